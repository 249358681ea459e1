import AsyncHTTPClient
import Clients
import Foundation
import Logging
import NIOCore
import Orchestrators
import ServiceLifecycle
import UnixSignals

/// Keeps the routing table and its upstreams current: re-reads the routing file when it changes (checked every
/// `routing.reloadInterval`) or on SIGHUP, and runs the active health checks of the table in force.
struct RoutingService: Service {
    let routing: Routing
    let reloadInterval: Duration
    let metrics: GatewayMetrics
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                if routing.path != nil {
                    group.addTask { await watchFile() }
                    group.addTask { await watchHangUp() }
                }
                group.addTask { await checkHealth() }
            }
        }
    }

    /// Reloads when the file's size, time or identity (an atomic rename, a Kubernetes ConfigMap swap) changes.
    private func watchFile() async {
        guard let path = routing.path else { return }
        var seen = Self.fingerprint(of: path)
        while !Task.isCancelled {
            do { try await Task.sleep(for: reloadInterval) } catch { return }
            let now = Self.fingerprint(of: path)
            guard now != seen else { continue }
            seen = now
            routing.reload(logger: logger)
        }
    }

    private func watchHangUp() async {
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            logger.info("SIGHUP: reloading the routing table")
            routing.reload(logger: logger)
        }
    }

    private static func fingerprint(of path: String) -> [String] {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return [] }
        return [
            "\(attributes[.size] ?? "")", "\(attributes[.modificationDate] ?? "")",
            "\(attributes[.systemFileNumber] ?? "")",
        ]
    }

    /// Checks every instance of every upstream with a `healthCheck`, each upstream at its own interval; starts over
    /// on each new table.
    private func checkHealth() async {
        while !Task.isCancelled {
            let generation = routing.generation
            for upstream in generation.upstreams.values {
                metrics.healthyInstances(upstream: upstream.name, count: upstream.eligibleAddresses.count)
            }
            await withDiscardingTaskGroup { group in
                for upstream in generation.upstreams.values {
                    guard let policy = upstream.definition.healthCheck else { continue }
                    group.addTask {
                        while !Task.isCancelled, routing.generation.number == generation.number {
                            await withDiscardingTaskGroup { checks in
                                for instance in upstream.instances {
                                    checks.addTask { await check(instance.address, of: upstream, policy: policy) }
                                }
                            }
                            metrics.healthyInstances(
                                upstream: upstream.name, count: upstream.eligibleAddresses.count)
                            do { try await Task.sleep(for: policy.interval) } catch { return }
                        }
                    }
                }
                // Wakes the loop for a new table even when no upstream is checked.
                group.addTask {
                    while !Task.isCancelled, routing.generation.number == generation.number {
                        do { try await Task.sleep(for: reloadInterval) } catch { return }
                    }
                }
            }
        }
    }

    private func check(_ address: String, of upstream: UpstreamGroup, policy: HealthCheckPolicy) async {
        var request = HTTPClientRequest(url: address + policy.path)
        request.tlsConfiguration = upstream.tls
        request.headers.add(name: "User-Agent", value: "kubin-gateway-health-check")
        let passed: Bool
        do {
            let response = try await routing.client.execute(
                request, connectTimeout: min(upstream.definition.connectTimeout, policy.timeout),
                deadline: .now() + TimeAmount(policy.timeout))
            _ = try await response.body.collect(upTo: 64 * 1024)
            passed = (200..<300).contains(response.status.code)
        } catch {
            passed = false
        }
        if let healthy = upstream.recordCheck(of: address, passed: passed) {
            logger.notice(
                healthy ? "upstream instance healthy" : "upstream instance unhealthy",
                metadata: ["upstream": "\(upstream.name)", "instance": "\(address)"])
        }
    }
}

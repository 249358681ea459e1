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
    /// Resolves the names of upstreams found by DNS.
    let resolver: DNSResolver
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                if routing.path != nil {
                    group.addTask { await watchFile() }
                    group.addTask { await watchHangUp() }
                }
                group.addTask { await checkHealth() }
                group.addTask { await discover() }
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

    /// Checks every instance of every upstream with a `healthCheck`, each upstream at its own interval.
    private func checkHealth() async {
        await everyUpstream(interval: { $0.definition.healthCheck?.interval }) { upstream in
            guard let policy = upstream.definition.healthCheck else { return }
            await withDiscardingTaskGroup { checks in
                for instance in upstream.instances {
                    checks.addTask { await check(instance.address, of: upstream, policy: policy) }
                }
            }
            metrics.healthyInstances(upstream: upstream.name, count: upstream.eligibleAddresses.count)
        }
    }

    /// Resolves the instances of every upstream found by DNS, each every `dnsRefresh` (the first time at once).
    private func discover() async {
        await everyUpstream(interval: { $0.definition.discovery.refresh }) { upstream in
            await resolve(upstream)
        }
    }

    /// Runs `work` on each upstream of the table in force that `interval` gives an interval for, then every that
    /// interval; starts over on each new table.
    private func everyUpstream(
        interval: @escaping @Sendable (UpstreamGroup) -> Duration?,
        _ work: @escaping @Sendable (UpstreamGroup) async -> Void
    ) async {
        while !Task.isCancelled {
            let generation = routing.generation
            await withDiscardingTaskGroup { group in
                for upstream in generation.upstreams.values {
                    guard let interval = interval(upstream) else { continue }
                    group.addTask {
                        while !Task.isCancelled, routing.generation.number == generation.number {
                            await work(upstream)
                            do { try await Task.sleep(for: interval) } catch { return }
                        }
                    }
                }
                // Wakes the loop for a new table even when no upstream has work.
                group.addTask {
                    while !Task.isCancelled, routing.generation.number == generation.number {
                        do { try await Task.sleep(for: reloadInterval) } catch { return }
                    }
                }
            }
        }
    }

    /// Replaces the instances of `upstream` by what DNS says now; a failed resolution keeps the instances it had.
    private func resolve(_ upstream: UpstreamGroup) async {
        do {
            var instances: [UpstreamState.Instance] = []
            switch upstream.definition.discovery {
            case .instances: return
            case .addresses(let host, let port, let scheme, _):
                for address in try await addresses(of: host) {
                    instances.append(.init(address: Self.url(scheme, address, port)))
                }
            case .service(let name, let scheme, _):
                let services = try await resolver.records(of: name, type: .srv).compactMap { record in
                    if case .service(let priority, let weight, let port, let target) = record {
                        (priority, weight, port, target)
                    } else {
                        nil
                    }
                }
                // RFC 2782: the lowest priority is used while it has targets; weights spread within it.
                let best = services.map(\.0).min()
                for (priority, weight, port, target) in services where priority == best {
                    for address in try await addresses(of: target) {
                        instances.append(
                            .init(
                                address: Self.url(scheme, address, Int(port)),
                                weight: min(1000, max(1, Int(weight)))))
                    }
                }
            }
            let known = Set(upstream.instances.map(\.address))
            guard Set(instances.map(\.address)) != known else { return }
            upstream.replaceInstances(with: instances)
            metrics.healthyInstances(upstream: upstream.name, count: upstream.eligibleAddresses.count)
            logger.notice(
                "upstream instances discovered",
                metadata: ["upstream": "\(upstream.name)", "instances": "\(instances.map(\.address))"])
        } catch {
            logger.warning(
                "upstream discovery failed; its instances stay",
                metadata: ["upstream": "\(upstream.name)", "error": "\(error)"])
        }
    }

    /// The A and AAAA records of `host`.
    private func addresses(of host: String) async throws -> [String] {
        async let v4 = resolver.records(of: host, type: .a)
        async let v6 = resolver.records(of: host, type: .aaaa)
        return try await (v4 + v6).compactMap { record in
            if case .address(let address) = record { address } else { nil }
        }
    }

    private static func url(_ scheme: String, _ address: String, _ port: Int) -> String {
        "\(scheme)://\(address.contains(":") ? "[\(address)]" : address):\(port)"
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

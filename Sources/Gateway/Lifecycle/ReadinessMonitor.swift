import KubinModel
import Logging
import Orchestrators
import ServiceLifecycle
import Synchronization

/// Checks every configured dependency in the background and answers `/readyz` from the latest results.
///
/// Each dependency has its own loop: check, record the outcome and its duration, wait `interval`, repeat. A probe
/// never waits on a dependency, and a check that hangs still shows: once it has run longer than `timeout` the
/// dependency reports down. Probes from many load balancers therefore cost the dependencies nothing extra.
/// While the instance drains (after SIGTERM) the answer is 503 whatever the checks say.
package final class ReadinessMonitor: Service {
    /// A dependency and how to check it.
    package struct Dependency: Sendable {
        /// The name `/readyz` reports, for example `metadata`.
        package var name: String
        /// Throws when the dependency cannot serve requests.
        package var check: @Sendable () async throws -> Void

        package init(name: String, check: @escaping @Sendable () async throws -> Void) {
            self.name = name
            self.check = check
        }
    }

    /// What `/readyz` answers.
    package struct Report: Sendable, Encodable {
        /// Whether the instance should receive traffic.
        package enum Status: String, Sendable, Encodable {
            case ready, unready
            /// Draining after SIGTERM, whatever the checks say.
            case shuttingDown = "shutting-down"
        }

        /// One dependency's state.
        package struct Check: Sendable, Encodable, Equatable {
            package enum Status: String, Sendable, Encodable { case up, down }

            package var status: Status
            /// How long the latest check took (or has been running), in milliseconds.
            package var durationMs: Double
            /// Why it is down.
            package var error: String?
        }

        package var status: Status
        /// Every dependency by name.
        package var checks: [String: Check]

        /// True when the instance should receive traffic.
        package var isReady: Bool { status == .ready }
    }

    private enum Outcome: Sendable {
        case pending
        case running(since: ContinuousClock.Instant, last: Report.Check?)
        case finished(Report.Check)
    }

    private let dependencies: [Dependency]
    private let interval: Duration
    private let timeout: Duration
    private let outcomes: Mutex<[String: Outcome]>
    private let drainStart = Mutex<ContinuousClock.Instant?>(nil)
    private let logger: Logger

    package init(dependencies: [Dependency], interval: Duration, timeout: Duration, logger: Logger) {
        self.dependencies = dependencies
        self.interval = interval
        self.timeout = timeout
        self.outcomes = Mutex(Dictionary(uniqueKeysWithValues: dependencies.map { ($0.name, Outcome.pending) }))
        self.logger = logger
    }

    /// From now on `/readyz` answers 503 `shutting-down`.
    package func startDraining() { drainStart.withLock { $0 = $0 ?? .now } }

    /// When ``startDraining()`` was first called, or nil.
    package var drainingSince: ContinuousClock.Instant? { drainStart.withLock { $0 } }

    /// True once ``startDraining()`` was called.
    package var isDraining: Bool { drainingSince != nil }

    /// Runs the check loops until graceful shutdown or cancellation.
    package func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for dependency in self.dependencies {
                    group.addTask { await self.watch(dependency) }
                }
            }
        }
    }

    /// The current answer.
    package func report(now: ContinuousClock.Instant = .now) -> Report {
        let checks = outcomes.withLock { outcomes in
            outcomes.mapValues { outcome -> Report.Check in
                switch outcome {
                case .pending:
                    return Report.Check(status: .down, durationMs: 0, error: "not checked yet")
                case .running(let since, let last):
                    let elapsed = now - since
                    if elapsed > timeout {
                        return Report.Check(
                            status: .down, durationMs: Self.milliseconds(elapsed),
                            error: "no answer for \(Self.milliseconds(elapsed)) ms (timeout \(timeout))")
                    }
                    return last ?? Report.Check(status: .down, durationMs: 0, error: "first check running")
                case .finished(let check):
                    return check
                }
            }
        }
        let status: Report.Status =
            isDraining ? .shuttingDown : checks.values.allSatisfy { $0.status == .up } ? .ready : .unready
        return Report(status: status, checks: checks)
    }

    private func watch(_ dependency: Dependency) async {
        while !Task.isCancelled {
            let started = ContinuousClock.now
            outcomes.withLock { outcomes in
                let last: Report.Check? =
                    if case .finished(let check) = outcomes[dependency.name] { check } else { nil }
                outcomes[dependency.name] = .running(since: started, last: last)
            }
            var check: Report.Check
            do {
                try await dependency.check()
                check = Report.Check(status: .up, durationMs: Self.milliseconds(.now - started))
            } catch {
                check = Report.Check(
                    status: .down, durationMs: Self.milliseconds(.now - started), error: Self.describe(error))
            }
            if check.status == .up, ContinuousClock.now - started > timeout {
                check = Report.Check(
                    status: .down, durationMs: check.durationMs, error: "answered after the \(timeout) timeout")
            }
            let previous = outcomes.withLock { outcomes in
                defer { outcomes[dependency.name] = .finished(check) }
                if case .running(_, let last) = outcomes[dependency.name] { return last?.status }
                return nil
            }
            if previous != check.status {
                var metadata: Logger.Metadata = ["dependency": "\(dependency.name)"]
                if let error = check.error { metadata["error"] = "\(error)" }
                logger.log(
                    level: check.status == .up ? .info : .warning, "dependency \(check.status.rawValue)",
                    metadata: metadata)
            }
            try? await Task.sleep(for: interval)
        }
    }

    private static func milliseconds(_ duration: Duration) -> Double {
        ((duration / .milliseconds(1)) * 1000).rounded() / 1000
    }

    /// A refusal of a store's guard names the failure behind it (operators read this; clients never see it).
    private static func describe(_ error: any Error) -> String {
        guard let refusal = error as? KubinError, let cause = refusal.underlying as? LastFailure else {
            return "\(error)"
        }
        return "\(refusal) (last failure: \(cause))"
    }
}

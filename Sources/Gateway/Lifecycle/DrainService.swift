import Logging
import ServiceLifecycle

/// The first service told about a graceful shutdown (it is last in the group): it turns `/readyz` to 503, keeps
/// the listener open for `delay` so load balancers stop sending new requests here, then returns, and the group goes
/// on to stop the HTTP server.
struct DrainService: Service {
    /// Turned to draining when the shutdown starts.
    let readiness: ReadinessMonitor
    /// How long the listener stays open while `/readyz` fails.
    let delay: Duration
    /// How long in-flight work gets once the listener closes (logged here; enforced by the service group).
    let gracePeriod: Duration
    /// Where the start of the shutdown is logged.
    let logger: Logger

    func run() async throws {
        try await gracefulShutdown()
        readiness.startDraining()
        logger.info(
            "graceful shutdown started",
            metadata: ["drain_delay": "\(delay)", "grace_period": "\(gracePeriod)"])
        if delay > .zero { try await Task.sleep(for: delay) }
    }
}

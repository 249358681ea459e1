import Logging
import ServiceLifecycle

/// The first service told about a graceful shutdown (it is last in the group): it turns `/readyz` to 503, keeps
/// the listener open for `delay` so load balancers stop sending new requests here, then returns, and the group goes
/// on to stop the HTTP server.
struct DrainService: Service {
    let readiness: ReadinessMonitor
    let delay: Duration
    let gracePeriod: Duration
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

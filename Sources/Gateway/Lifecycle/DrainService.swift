import ServiceLifecycle

/// The first service told about a graceful shutdown (it is last in the group): it turns `/readyz` to 503, keeps
/// the listener open for `delay` so load balancers stop sending new requests here, then returns, and the group goes
/// on to stop the HTTP server.
struct DrainService: Service {
    let readiness: ReadinessMonitor
    let delay: Duration

    func run() async throws {
        try await gracefulShutdown()
        readiness.startDraining()
        if delay > .zero { try await Task.sleep(for: delay) }
    }
}

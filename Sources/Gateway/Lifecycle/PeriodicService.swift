import ServiceLifecycle

/// Runs `work` every `interval` (the first time one interval after it starts) until a graceful shutdown: the timers
/// of the JWKS and of the TLS files.
struct PeriodicService: Service {
    let interval: Duration
    let work: @Sendable () async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                await work()
            }
        }
    }
}

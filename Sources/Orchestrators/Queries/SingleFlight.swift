import Synchronization

/// Coalesces concurrent calls with the same key: the first caller runs the work, later callers wait for its result.
///
/// If the running caller is cancelled, a waiter runs the work itself instead of failing; a waiter that is cancelled
/// stops waiting with `CancellationError`.
final class SingleFlight<Value: Sendable>: Sendable {
    private final class Call: Sendable {
        private struct State {
            var result: Result<Value, any Error>?
            var waiters: [Int: CheckedContinuation<Result<Value, any Error>, Never>] = [:]
            var nextWaiter = 0
        }

        private let state = Mutex(State())

        func finish(_ result: Result<Value, any Error>) {
            let waiters = state.withLock { state in
                state.result = result
                defer { state.waiters.removeAll() }
                return Array(state.waiters.values)
            }
            for waiter in waiters { waiter.resume(returning: result) }
        }

        func wait() async -> Result<Value, any Error> {
            let id = state.withLock { state in
                defer { state.nextWaiter += 1 }
                return state.nextWaiter
            }
            return await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let ready: Result<Value, any Error>? = state.withLock { state in
                        if let result = state.result { return result }
                        if Task.isCancelled { return .failure(CancellationError()) }
                        state.waiters[id] = continuation
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: .failure(CancellationError()))
            }
        }
    }

    private let calls = Mutex<[String: Call]>([:])

    /// Runs `work` for `key`, or waits for the run already in progress for it.
    func run(_ key: String, _ work: () async throws -> Value) async throws -> Value {
        while true {
            let (call, isLeader) = calls.withLock { calls in
                if let call = calls[key] { return (call, false) }
                let call = Call()
                calls[key] = call
                return (call, true)
            }
            if isLeader {
                let result: Result<Value, any Error>
                do { result = .success(try await work()) } catch { result = .failure(error) }
                calls.withLock { _ = $0.removeValue(forKey: key) }
                call.finish(result)
                return try result.get()
            }
            let result = await call.wait()
            if case .failure(let error) = result, error is CancellationError, !Task.isCancelled { continue }
            return try result.get()
        }
    }
}

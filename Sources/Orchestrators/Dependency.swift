import KubinModel

/// Runs a call to the store named `dependency`; its failures become ``KubinError/Code/dependencyUnavailable``
/// (a ``KubinError`` or a cancellation passes through unchanged).
func dependency<Result: Sendable>(_ dependency: String, _ call: () async throws -> Result) async throws -> Result {
    do {
        return try await call()
    } catch let error as KubinError {
        throw error
    } catch is CancellationError {
        throw CancellationError()
    } catch {
        throw KubinError.dependencyUnavailable(dependency, underlying: error)
    }
}

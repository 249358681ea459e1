/// Runs `body`, then `close`, whether `body` returned or threw: the scoped `with... { }` shape for a resource that
/// has only a `close()`. When both fail, the body's error is the one thrown (it says more than the close's).
package func closing<Result>(
    _ close: () async throws -> Void, _ body: () async throws -> Result
) async throws -> Result {
    let result: Result
    do {
        result = try await body()
    } catch {
        try? await close()
        throw error
    }
    try await close()
    return result
}

import Hummingbird
import KubinModel
import Logging

/// Turns every error into an RFC 9457 problem answer: ``KubinError``s by the table in ``Problem``; the router's
/// 404 into 405 (with `Allow`) when the path exists for other methods; anything unexpected into a 500 that says
/// nothing about internals while the log gets everything.
///
/// An error answer to a request that carries a body asks for `Connection: close`, so the server stops reading a body
/// it will not use (see ``LingeringCloseHandler``). So does every answer to a request asking to upgrade the
/// connection: NIO's HTTP decoder reads nothing more after such a request (no upgrade is served), so a next request
/// on that connection would wait for the head time-out.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// The routes the router serves (filled once they are registered), for telling 405 from 404.
    let routes: RouteTable

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard request.headers[.upgrade] != nil else { return try await respond(request, context: context, next: next) }
        var response = try await respond(request, context: context, next: next)
        response.headers[.connection] = "close"
        return response
    }

    private func respond(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as KubinError {
            return answer(error, request: request, context: context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = routes.methods(matching: request.uri.path)
            if allowed.isEmpty {
                return answer(
                    KubinError(.notFound, "No route matches '\(request.uri.path.prefix(256))'."),
                    request: request, context: context)
            }
            return answer(
                KubinError(
                    .methodNotAllowed,
                    "\(request.method) is not allowed here; allowed: \(allowed.joined(separator: ", "))."),
                request: request, context: context, headers: [.allow: allowed.joined(separator: ", ")])
        } catch let error as HTTPError where (400..<500).contains(error.status.code) {
            var headers = error.headers
            if Self.hasBody(request) { headers[.connection] = "close" }
            return Problem.response(
                status: error.status, detail: error.body ?? error.status.reasonPhrase, path: request.uri.path,
                requestID: context.requestID, extraHeaders: headers)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return answer(
                KubinError(.internalError, "An unexpected error occurred; the request id identifies it in the logs."),
                request: request, context: context)
        }
    }

    private func answer(
        _ error: KubinError, request: Request, context: Context, headers: HTTPFields = [:]
    ) -> Response {
        if error.code == .dependencyUnavailable || error.code == .internalError {
            context.logger.error("request failed", metadata: ["error": "\(error.debugDescription)"])
        }
        var headers = headers
        if Self.hasBody(request) { headers[.connection] = "close" }
        return Problem.response(
            for: error, path: request.uri.path, requestID: context.requestID, extraHeaders: headers)
    }

    private static func hasBody(_ request: Request) -> Bool {
        if let length = request.headers[.contentLength] { return length != "0" }
        return request.headers[.transferEncoding] != nil
    }
}

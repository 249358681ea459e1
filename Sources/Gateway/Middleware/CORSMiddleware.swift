import HTTPTypes
import Hummingbird

/// Cross-origin access for the web UI: only the configured origins get CORS headers.
///
/// A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here with 204, before
/// authentication (browsers send no credentials on a preflight): for an allowed origin with the allowed methods,
/// headers and max-age; for any other origin with no CORS header at all, so the browser refuses the call. Other
/// requests from an allowed origin get `Access-Control-Allow-Origin` and the headers a script may read. Hummingbird's
/// own `CORSMiddleware` answers preflights of disallowed origins with the allowed methods, and takes the origin list
/// only as variadic arguments, so the gateway has this one.
struct CORSMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// Origins (`scheme://host[:port]`) allowed; `*` allows any.
    let allowedOrigins: Set<String>
    /// How long a browser may cache a preflight's answer.
    let maxAge: Duration

    static let allowedMethods = "GET, HEAD, POST, DELETE"
    static let allowedHeaders =
        "Authorization, Content-Type, Idempotency-Key, If-None-Match, If-Range, Range, X-Request-ID"
    static let exposedHeaders =
        "ETag, Location, Retry-After, RateLimit, RateLimit-Policy, X-Request-ID, Idempotent-Replayed, Content-Range"

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        if Self.isPreflight(request.head) {
            return Response(status: .noContent, headers: preflightHeaders(origin: origin))
        }
        var response = try await next(request, context)
        decorate(&response.headers, origin: origin)
        return response
    }

    /// Whether `head` is a preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    static func isPreflight(_ head: HTTPRequest) -> Bool {
        head.method == .options && head.headerFields[.origin] != nil
            && head.headerFields[.accessControlRequestMethod] != nil
    }

    /// The headers of the 204 answering a preflight from `origin`: none but `Vary` for an origin not allowed.
    func preflightHeaders(origin: String) -> HTTPFields {
        var headers: HTTPFields = [.vary: "Origin"]
        if isAllowed(origin) {
            headers[.accessControlAllowOrigin] = origin
            headers[.accessControlAllowMethods] = Self.allowedMethods
            headers[.accessControlAllowHeaders] = Self.allowedHeaders
            headers[.accessControlMaxAge] = String(maxAge.components.seconds)
        }
        return headers
    }

    /// Adds the CORS headers of an answer to a request from `origin`.
    func decorate(_ headers: inout HTTPFields, origin: String) {
        headers[values: .vary].append("Origin")
        if isAllowed(origin) {
            headers[.accessControlAllowOrigin] = origin
            headers[.accessControlExposeHeaders] = Self.exposedHeaders
        }
    }

    private func isAllowed(_ origin: String) -> Bool {
        origin != "null" && (allowedOrigins.contains(origin) || allowedOrigins.contains("*"))
    }
}

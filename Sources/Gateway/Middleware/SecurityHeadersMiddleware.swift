import HTTPTypes
import Hummingbird

/// Headers every answer carries so browsers treat it as data, never as a page: `X-Content-Type-Options: nosniff`,
/// `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, a `Content-Security-Policy` that allows nothing, and
/// `Strict-Transport-Security` when the gateway serves TLS. Answers of the authenticated routes are `private`: no
/// shared cache may keep one tenant's data for another.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// True when the listener serves TLS (only then is HSTS meaningful).
    let isTLS: Bool

    static let frameOptions = HTTPField.Name("X-Frame-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        apply(to: &response.headers, path: request.uri.path)
        return response
    }

    /// Adds the headers to an answer for `path` (the proxy's answers get them here too).
    func apply(to headers: inout HTTPFields, path: String) {
        headers[.xContentTypeOptions] = "nosniff"
        headers[Self.frameOptions] = "DENY"
        headers[Self.referrerPolicy] = "no-referrer"
        headers[.contentSecurityPolicy] = "default-src 'none'; frame-ancestors 'none'"
        if isTLS { headers[.strictTransportSecurity] = "max-age=31536000; includeSubDomains" }
        if AuthMiddleware.isProtected(path) {
            let cacheControl = headers[.cacheControl]
            if let cacheControl, !cacheControl.contains("private") {
                headers[.cacheControl] = "private, " + cacheControl
            } else if cacheControl == nil {
                headers[.cacheControl] = "private"
            }
        }
    }
}

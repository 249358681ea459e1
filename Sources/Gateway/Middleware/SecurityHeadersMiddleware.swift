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
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[Self.frameOptions] = "DENY"
        response.headers[Self.referrerPolicy] = "no-referrer"
        response.headers[.contentSecurityPolicy] = "default-src 'none'; frame-ancestors 'none'"
        if isTLS { response.headers[.strictTransportSecurity] = "max-age=31536000; includeSubDomains" }
        if AuthMiddleware.isProtected(request.uri.path) {
            let cacheControl = response.headers[.cacheControl]
            if let cacheControl, !cacheControl.contains("private") {
                response.headers[.cacheControl] = "private, " + cacheControl
            } else if cacheControl == nil {
                response.headers[.cacheControl] = "private"
            }
        }
        return response
    }
}

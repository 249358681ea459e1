import Clients
import HTTPTypes
import Hummingbird
import KubinModel
import Orchestrators

/// Holds every authenticated caller to the rate of the request's class (`query`, `upload`, `admin`) and says so in
/// the IETF rate-limit headers: `RateLimit-Policy: "query";q=1000;w=60` and `RateLimit: "query";r=<remaining>;t=<s>`.
/// Past its rate a request gets `429 rate-limited` with `Retry-After`, and `gateway_rate_limit_exceeded_total{class}`
/// counts it. Sits after ``AuthMiddleware``: the principal is the key.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// Decides requests.
    let limiter: RateLimiter
    /// Counts refusals.
    let metrics: GatewayMetrics

    static let policyHeader = HTTPField.Name("RateLimit-Policy")!
    static let stateHeader = HTTPField.Name("RateLimit")!

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let principal = context.principal,
            let verdict = await verdict(for: Self.routeClass(of: request.method), principal: principal)
        else { return try await next(request, context) }
        if let refusal = verdict.refusal {
            var headers = verdict.headers
            if request.headers[.contentLength].map({ $0 != "0" }) ?? (request.headers[.transferEncoding] != nil) {
                headers[.connection] = "close"
            }
            return Problem.response(
                for: refusal, path: request.uri.path, requestID: context.requestID, extraHeaders: headers)
        }
        var response = try await next(request, context)
        for field in verdict.headers { response.headers[field.name] = field.value }
        return response
    }

    /// What the limiter says about one more `routeClass` request of `principal`: the rate-limit headers of the
    /// answer, and the 429 error when it is over its rate; nil when no rate applies.
    func verdict(
        for routeClass: RateLimiter.RouteClass, principal: Principal
    ) async -> (headers: HTTPFields, refusal: KubinError?)? {
        guard
            let decision = await limiter.acquire(
                routeClass, tenant: principal.tenant.rawValue, subject: principal.subject)
        else { return nil }
        let name = routeClass.rawValue
        let headers: HTTPFields = [
            Self.policyHeader: "\"\(name)\";q=\(decision.rate.limit);w=\(decision.rate.periodMicros / 1_000_000)",
            Self.stateHeader: "\"\(name)\";r=\(decision.remaining);t=\(decision.resetSeconds)",
        ]
        guard decision.isAllowed else {
            metrics.rateLimitExceeded(routeClass: name)
            return (
                headers,
                KubinError(
                    .rateLimited,
                    "More than \(decision.rate.limit) \(name) requests in \(decision.rate.periodMicros / 1_000_000) s; "
                        + "retry in \(decision.retryAfterSeconds) s.",
                    retryAfterSeconds: decision.retryAfterSeconds)
            )
        }
        return (headers, nil)
    }

    /// The class of a request: uploads, deletions (admin), and everything else (queries).
    static func routeClass(of method: HTTPRequest.Method) -> RateLimiter.RouteClass {
        switch method {
        case .post: .upload
        case .get, .head: .query
        default: .admin
        }
    }
}

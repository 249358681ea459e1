import HTTPTypes
import Hummingbird
import KubinModel
import Logging
import NIOCore

/// Lets through only callers with a valid identity and the scope the request needs, and records who they are in the
/// context, whose tenant every route then confines itself to.
///
/// Applies to `/api/` and `/internal/` (the ops routes stay open to probes) and to proxied routes unless their `auth`
/// is `none`. `GET` and `HEAD` need `snapshots:read`; every other method writes and needs `snapshots:write`; a
/// proxied route needs the scopes it lists instead. A refusal is 401 with the reason in the problem's `reason`
/// member and in an audit log line (never the credential); a missing scope is 403.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// Checks credentials.
    let authenticator: Authenticator
    /// Authenticates internal callers by their TLS client certificate; nil when none are asked for.
    let clientCertificates: ClientCertificates?
    /// Counts refusals.
    let metrics: GatewayMetrics
    /// The caller of every request when authentication is disabled (`auth.disabled`); nil otherwise.
    var anonymous: Principal? = nil

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard Self.isProtected(request.uri.path) else { return try await next(request, context) }
        var context = context
        context.principal = try await principal(
            for: request.head, routeScopes: nil, channel: context.channel, logger: context.logger)
        return try await next(request, context)
    }

    /// The verified caller of `head`, holding the scopes the request needs: `routeScopes` on a proxied route, the
    /// method's snapshot scope otherwise. Throws the 401 or 403 ``KubinError`` to answer with.
    func principal(
        for head: HTTPRequest, routeScopes: [String]?, channel: any Channel, logger: Logger
    ) async throws -> Principal {
        if let anonymous { return anonymous }
        let principal: Principal
        switch try await authenticate(head.headerFields[values: .authorization], on: channel) {
        case .success(let known): principal = known
        case .failure(let refusal):
            metrics.authenticationFailed(reason: refusal.failure.reason)
            logger.notice(
                "authentication failed",
                metadata: [
                    "audit": "authentication-failed", "reason": "\(refusal.failure.reason)",
                    "credential": "\(refusal.method.rawValue)", "method": "\(head.method)",
                    "path": "\((head.path ?? "").prefix(256))",
                ])
            throw refusal.failure.kubinError
        }
        if let routeScopes {
            let granted = principal.scopeNames
            if let missing = routeScopes.first(where: { !granted.contains($0) }) {
                throw KubinError(
                    .forbidden, "This route needs the scope '\(missing)', which the credential does not carry.")
            }
        } else {
            let needed: Scope = head.method == .get || head.method == .head ? .snapshotsRead : .snapshotsWrite
            guard principal.scopes.contains(needed) else {
                throw KubinError(
                    .forbidden,
                    "This request needs the scope '\(needed.rawValue)', which the credential does not carry.")
            }
        }
        return principal
    }

    /// The caller of the request: its `Authorization` when it has one, else its client certificate (when those are
    /// asked for).
    private func authenticate(
        _ authorization: [String], on channel: any Channel
    ) async throws -> Result<Principal, Authenticator.Refusal> {
        if authorization.isEmpty, let clientCertificates {
            do {
                if let principal = try await clientCertificates.principal(on: channel) { return .success(principal) }
            } catch {
                return .failure(Authenticator.Refusal(error, method: .clientCertificate))
            }
        }
        return try await authenticator.authenticate(authorization)
    }

    /// True for the paths that need an identity.
    static func isProtected(_ path: String) -> Bool { path.hasPrefix("/api/") || path.hasPrefix("/internal/") }
}

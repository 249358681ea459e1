import Hummingbird
import KubinModel
import NIOCore

/// Per-request state the gateway's middleware and routes share.
package struct GatewayRequestContext: RequestContext {
    /// Hummingbird's per-request storage (logger, route, parameters).
    package var coreContext: CoreRequestContextStorage
    /// The request's id: the client's well-formed `X-Request-ID`, or one made for it.
    package var requestID: String
    /// The connection the request arrived on (for `100 Continue`).
    package let channel: any Channel
    /// Who is calling, once ``AuthMiddleware`` has checked the credential.
    package var principal: Principal?

    /// The context of a request arriving through `source`.
    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.requestID = ""
        self.channel = source.channel
    }

    /// The tenant every read and write of this request is confined to. Only routes behind ``AuthMiddleware`` ask,
    /// so a missing principal is a wiring mistake, answered as an internal error rather than served unfiltered.
    var tenant: TenantID {
        get throws {
            guard let principal else {
                throw KubinError(.internalError, "The request reached a route unauthenticated.")
            }
            return principal.tenant
        }
    }
}

import Hummingbird
import NIOCore

/// Per-request state the gateway's middleware and routes share.
package struct GatewayRequestContext: RequestContext {
    /// Hummingbird's per-request storage (logger, route, parameters).
    package var coreContext: CoreRequestContextStorage
    /// The request's id: the client's well-formed `X-Request-ID`, or one made for it.
    package var requestID: String
    /// The connection the request arrived on (for `100 Continue`).
    package let channel: any Channel

    /// The context of a request arriving through `source`.
    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.requestID = ""
        self.channel = source.channel
    }
}

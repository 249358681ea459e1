import Hummingbird

/// Per-request state the gateway's middleware and routes share.
package struct GatewayRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    /// The request's id: the client's well-formed `X-Request-ID`, or one made for it.
    package var requestID: String

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.requestID = ""
    }
}

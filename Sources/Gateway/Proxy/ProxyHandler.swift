import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// What every proxied request needs, shared by all connections: the routing table in force, the gateway's own
/// routes (which always win), the upstream connections, and the middleware whose rules the proxy applies itself.
struct ProxyEnvironment: Sendable {
    let routing: Routing
    /// The gateway's own routes.
    let ownRoutes: ServedPaths
    let pools: UpstreamPools
    let metrics: GatewayMetrics
    let auth: AuthMiddleware
    let rateLimits: RateLimitMiddleware
    let cors: CORSMiddleware
    let securityHeaders: SecurityHeadersMiddleware
    /// Peers whose forwarding headers are kept.
    let trustedProxies: [AddressRange]
    /// The longest URL read.
    let maxURLBytes: Int
    /// How long an upgraded connection (a WebSocket) may pass no byte either way.
    let tunnelIdleTimeout: TimeAmount
    let logger: Logger

    /// The proxied route of `head` and the upstream of the table in force; nil when the gateway serves it (no
    /// route matches, or one of its own routes does, under any method).
    func match(_ head: HTTPRequest) -> (route: RoutingTable.Route, upstream: UpstreamGroup, path: String)? {
        let generation = routing.generation
        guard !generation.table.routes.isEmpty, let target = head.path else { return nil }
        let path = String(target.prefix { $0 != "?" })
        guard let route = generation.table.route(for: path), let upstream = generation.upstreams[route.upstream],
            !ownRoutes.contains(path)
        else { return nil }
        return (route, upstream, path)
    }
}

/// Serves the proxied routes of one client connection in NIO itself, below Hummingbird's router: a request whose
/// head matches a proxied route becomes a ``ProxyExchange`` on this connection's event loop; every other request
/// passes on to the router untouched.
///
/// Requests on a connection are answered in order: a pipelined head that arrives while an earlier answer (the
/// router's or an exchange's) is still being written waits here, with reading paused, until that answer ends.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let environment: ProxyEnvironment
    private var context: ChannelHandlerContext?
    private var pool: UpstreamPool?
    /// Heads passed to the router whose answers have not ended.
    private var routerAnswers = 0
    /// Whose request body is arriving: an exchange's, or (nil) the router's.
    private var reading: ProxyExchange?
    /// The exchange whose answer is being written.
    private var answering: ProxyExchange?
    /// Parts of pipelined requests, held until the answer before them has ended.
    private var held = CircularBuffer<HTTPRequestPart>()
    private var isReadPending = false
    private var isDraining = false
    /// The client closed its sending side during an exchange: the router learns it once the exchange is over (it
    /// would end the connection, and the exchange with it, at once).
    private var isInputClosedPending = false
    /// The answering exchange's deadline for its answer's head.
    private var answerTimer = DeadlineTimer<NIOScheduledCallback>()

    init(environment: ProxyEnvironment) { self.environment = environment }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pool = environment.pools.pool(on: context.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if held.isEmpty, dispatch(part, context: context) { return }
        held.append(part)
    }

    /// Hands `part` to the router or an exchange; false when it must wait for an earlier answer.
    private func dispatch(_ part: HTTPRequestPart, context: ChannelHandlerContext) -> Bool {
        switch part {
        case .head(let head):
            guard answering == nil else { return false }
            if let pool, let match = environment.match(head) {
                guard routerAnswers == 0 else { return false }
                let exchange = ProxyExchange(
                    head: head, path: match.path, route: match.route, upstream: match.upstream,
                    environment: environment, pool: pool, handler: self, context: context)
                reading = exchange
                answering = exchange
                exchange.start()
            } else {
                routerAnswers += 1
                context.fireChannelRead(wrapInboundOut(part))
            }
        case .body, .end:
            if let reading {
                if case .end = part { self.reading = nil }
                reading.requestPart(part)
            } else {
                context.fireChannelRead(wrapInboundOut(part))
            }
        }
        return true
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Only the router's answers pass here; exchanges write past this handler.
        context.write(data, promise: promise)
        if case .end = unwrapOutboundIn(data) {
            routerAnswers -= 1
            if routerAnswers == 0 { drainHeld() }
        }
    }

    func read(context: ChannelHandlerContext) {
        if !held.isEmpty || reading?.holdsReads == true {
            isReadPending = true
        } else {
            context.read()
        }
    }

    /// A request body that breaks during an exchange (a malformed chunk, one over the limit) is the exchange's to
    /// answer; the router would answer it in the middle of the exchange's answer.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let exchange = reading else { return context.fireErrorCaught(error) }
        reading = nil
        exchange.requestFailed(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent, reading != nil || answering != nil || !held.isEmpty {
            isInputClosedPending = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        answering?.clientWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientClosed()
        context.fireChannelInactive()
    }

    /// Also on removal: the connection-state handler before this one does not pass `channelInactive` on.
    func handlerRemoved(context: ChannelHandlerContext) {
        clientClosed()
        self.context = nil
    }

    private func clientClosed() {
        answerTimer.cancel()
        held.removeAll()
        let exchanges = [reading, answering].compactMap { $0 }
        reading = nil
        answering = nil
        for exchange in exchanges { exchange.clientClosed() }
    }

    /// `exchange` has written the last part of its answer (or given up on it).
    func exchangeAnswered(_ exchange: ProxyExchange) {
        guard answering === exchange else { return }
        answering = nil
        answerTimer.clear()
        drainHeld()
    }

    /// The answering exchange times out at `deadline` unless its answer's head arrives first.
    func watchAnswer(by deadline: NIODeadline) { answerTimer.watch(deadline, arm: arm) }

    /// The answering exchange has the head of its answer.
    func answerArrived() { answerTimer.clear() }

    private func arm(at deadline: NIODeadline) -> NIOScheduledCallback? {
        try? context?.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: self)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        if answerTimer.fired(now: .now(), arm: arm) { answering?.timedOut() }
    }

    /// An exchange can take more of its request body.
    func resumeReading() {
        guard let context, isReadPending, held.isEmpty, reading?.holdsReads != true else { return }
        isReadPending = false
        context.read()
    }

    private func drainHeld() {
        guard let context, !isDraining else { return }
        isDraining = true
        let answers = routerAnswers
        while let part = held.first, dispatch(part, context: context) { held.removeFirst() }
        isDraining = false
        // Outside a read from the socket: the router's channel takes in what was read at the read's completion.
        if routerAnswers != answers { context.fireChannelReadComplete() }
        if isInputClosedPending, held.isEmpty, reading == nil, answering == nil {
            isInputClosedPending = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        resumeReading()
    }
}

import HTTPTypes
import HummingbirdCore
import KubinModel
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Orchestrators

/// One proxied request, from its head to the last byte of its answer, on its client connection's event loop (no
/// task, no thread hop unless authentication or a rate limit has to wait for a store).
///
/// The gateway's middleware applies as on its own routes, in the same order, through the middleware's own rules:
/// request id, access log and metrics (``RequestRecord``), security headers and CORS on every answer, framing and URL
/// limits, authentication and scopes, rate limits. Then: the route's methods (405 with `Allow`), an instance from the
/// upstream's balancer (none: 503 `no-healthy-upstream` with Retry-After), a pooled keep-alive connection to it
/// (``UpstreamPool``), and both bodies relayed as they arrive, with back-pressure both ways. No connection: 502
/// `bad-gateway`; no answer head within the upstream's request time-out: 504 `gateway-timeout`; a kept-alive
/// connection the instance had closed is retried once on a new one for a request without a body. A client that
/// goes away closes the upstream connection, which cancels the upstream request.
final class ProxyExchange: UpstreamConnection.Reader {
    private enum Phase {
        /// Authentication and rate limits are being checked.
        case admitting
        /// Waiting for a connection to the instance.
        case connecting
        /// The request went upstream; its answer is awaited or being relayed.
        case forwarding
        case done
    }

    private let head: HTTPRequest
    private let path: String
    private let route: RoutingTable.Route
    private let upstream: UpstreamGroup
    private let environment: ProxyEnvironment
    private let pool: UpstreamPool
    /// Strong until the exchange completes (then nil): a weak reference would put every retain of the handler on
    /// Swift's slow path.
    private var handler: ProxyHandler?
    private let context: ChannelHandlerContext
    private let requestID: String
    /// Made when something is logged: setting its metadata costs more than most of the exchange.
    private lazy var logger: Logger = {
        var logger = environment.logger
        logger[metadataKey: "request_id"] = .string(requestID)
        return logger
    }()
    private let record: RequestRecord
    private var phase = Phase.admitting
    /// Body parts that arrived before the connection was ready.
    private var pending: [HTTPRequestPart] = []
    private var hasRequestEnded = false
    private var hasBody = false
    private var connection: UpstreamConnection?
    private var pick: UpstreamGroup.Pick?
    private var pickedAt = ContinuousClock.now
    /// Headers the answer gets besides the usual ones (the rate limit's).
    private var answerHeaders: HTTPFields = [:]
    private var principal: Principal?
    private var status = 0
    private var hasAnswerStarted = false
    private var isKeepAlive = true
    private var hasRetried = false
    /// Tries so far, the first included (the retry of a closed kept-alive connection not counted).
    private var attempt = 1
    /// Every attempt must start before it: the first attempt's start plus the upstream's request time-out.
    private var deadline = ContinuousClock.now
    private var retryTask: Scheduled<Void>?
    /// Whether a place of the upstream's retry budget is held (from a retry's start to the end of its attempt).
    private var holdsRetryPlace = false
    /// A WebSocket handshake (`Upgrade: websocket`).
    private lazy var isUpgrade =
        head.headerFields[.upgrade].map { $0.utf8.count == 9 && $0.lowercased() == "websocket" } ?? false

    init(
        head: HTTPRequest, path: String, route: RoutingTable.Route, upstream: UpstreamGroup,
        environment: ProxyEnvironment, pool: UpstreamPool, handler: ProxyHandler, context: ChannelHandlerContext
    ) {
        self.head = head
        self.path = path
        self.route = route
        self.upstream = upstream
        self.environment = environment
        self.pool = pool
        self.handler = handler
        self.context = context
        let offered = head.headerFields[RequestIDMiddleware.header]
        requestID = offered.flatMap { RequestIDMiddleware.isWellFormed($0) ? $0 : nil } ?? RequestIDMiddleware.newID()
        record = RequestRecord(
            method: head.method.rawValue, path: path, logger: environment.logger, metrics: environment.metrics,
            requestID: requestID)
        record.reportUpstream(upstream.name, instance: nil, latency: nil)
    }

    /// Whether the client's connection should stop being read (the request body has nowhere to go yet).
    var holdsReads: Bool {
        switch phase {
        case .admitting, .connecting: true
        case .forwarding: connection?.isWritable == false
        case .done: false
        }
    }

    func start() {
        environment.metrics.requestStarted()
        if let refusal = RequestFramingMiddleware.refusal(of: head) { return answer(refusal) }
        let length = head.path?.utf8.count ?? 0
        guard length <= environment.maxURLBytes else {
            return answer(
                KubinError(.uriTooLong, "The URL has \(length) bytes; at most \(environment.maxURLBytes) are read."))
        }
        if CORSMiddleware.isPreflight(head), let origin = head.headerFields[.origin] {
            return respond(
                HTTPResponse(status: .noContent, headerFields: environment.cors.preflightHeaders(origin: origin)))
        }
        guard route.auth == .required else { return proceed() }
        let (environment, head, route, logger) = (environment, head, route, logger)
        let channel = context.channel
        context.eventLoop.makeFutureWithTask { () async -> Admission in
            await Admission.check(head, route: route, environment: environment, channel: channel, logger: logger)
        }.assumeIsolated().whenSuccess { admission in
            guard case .admitting = self.phase else { return }
            switch admission {
            case .admitted(let principal, let headers):
                self.principal = principal
                self.answerHeaders = headers
                self.proceed()
            case .refused(let error, let headers):
                self.answerHeaders = headers
                self.answer(error)
            }
        }
    }

    /// After admission: the route's methods, an instance, a connection.
    private func proceed() {
        if let methods = route.methods, !methods.contains(head.method.rawValue) {
            let allowed = methods.joined(separator: ", ")
            return answer(
                KubinError(.methodNotAllowed, "\(head.method) is not allowed here; allowed: \(allowed)."),
                headers: [.allow: allowed])
        }
        if isUpgrade, !route.isWebSocket {
            return answer(
                KubinError(.notImplemented, "This route does not pass WebSocket upgrades through."),
                headers: [.connection: "close"])
        }
        let pick: UpstreamGroup.Pick
        let (choice, transition) = upstream.choose()
        report(transition, of: choice)
        switch choice {
        case .instance(let chosen): pick = chosen
        case .noneEligible: return answerNoInstance()
        case .saturated: return answerSaturated()
        }
        self.pick = pick
        pickedAt = .now
        deadline = pickedAt + upstream.definition.requestTimeout
        record.reportUpstream(upstream.name, instance: pick.address, latency: nil)
        let limit = TimeAmount.nanoseconds(Int64(upstream.definition.requestTimeout / .nanoseconds(1)))
        handler?.watchAnswer(by: .now() + limit)
        connect()
    }

    private func connect() {
        guard let pick else { return }
        phase = .connecting
        pool.acquire(pick.address, of: upstream) { result in self.connected(result) }
    }

    private func connected(_ result: Result<UpstreamConnection, any Error>) {
        guard case .connecting = phase else {
            if case .success(let connection) = result { pool.release(connection) }
            return
        }
        let connection: UpstreamConnection
        switch result {
        case .success(let ready): connection = ready
        case .failure(let error):
            // Nothing was sent: any request may go to another instance.
            if retry(after: error, status: 502) { return }
            return failed(error)
        }
        self.connection = connection
        connection.reader = self
        phase = .forwarding
        if !hasRequestEnded, pending.isEmpty, head.headerFields[.expect]?.lowercased() == "100-continue" {
            // The client waits for this before it sends its body; reading resumes below.
            context.writeAndFlush(NIOAny(HTTPResponsePart.head(HTTPResponse(status: .continue))), promise: nil)
        }
        connection.write(.head(upstreamHead()), flush: false)
        for part in pending { forward(part, on: connection) }
        pending = []
        connection.flush()
        handler?.resumeReading()
    }

    /// The head sent upstream: the rewritten path, the forwarded headers, `Host` naming the instance.
    private func upstreamHead() -> HTTPRequestHead {
        var target = route.forwardedPath(for: path)
        if let query = head.path?.firstIndex(of: "?").map({ head.path![$0...] }) { target += query }
        let peer = context.channel.remoteAddress?.ipAddress
        let isTLS = environment.securityHeaders.isTLS
        var headers = ProxyHeaders.request(
            head.headerFields,
            facts: .init(
                peer: peer, scheme: isTLS ? "https" : "http", host: head.authority, requestID: requestID,
                principal: principal, forwardsAuthorization: route.forwardsAuthorization,
                isPeerTrusted: peer.map { peer in environment.trustedProxies.contains { $0.contains(peer) } } ?? false,
                keepsUpgrade: isUpgrade))
        if let address = pick?.address, let slash = address.lastIndex(of: "/") {
            // `scheme://host:port`, nothing after it (the routing table's rule): the host and port.
            headers.add(name: "Host", value: String(address[address.index(after: slash)...]))
        }
        return HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: head.method.rawValue), uri: target, headers: headers)
    }

    /// The next part of the client's request.
    func requestPart(_ part: HTTPRequestPart) {
        switch part {
        case .head: return
        case .body(let buffer):
            hasBody = true
            record.addIn(buffer.readableBytes)
        case .end: hasRequestEnded = true
        }
        switch phase {
        case .admitting, .connecting: pending.append(part)
        case .forwarding: if let connection { forward(part, on: connection) }
        case .done: break
        }
    }

    private func forward(_ part: HTTPRequestPart, on connection: UpstreamConnection) {
        switch part {
        case .head: break
        case .body(let buffer): connection.write(.body(.byteBuffer(buffer)), flush: true)
        case .end(let trailers):
            connection.write(.end(trailers.map { HTTPHeaders($0.map { ($0.name.rawName, $0.value) }) }), flush: true)
        }
    }

    func clientWritabilityChanged(isWritable: Bool) { connection?.holdReads(!isWritable) }

    // MARK: The upstream's answer

    func upstreamHead(_ response: HTTPResponseHead) {
        guard case .forwarding = phase else { return }
        let code = Int(response.status.code)
        if code == 101, isUpgrade, let connection { return upgrade(response, on: connection) }
        if [502, 503, 504].contains(code), isReplayable, let connection {
            let retryAfter = response.headers.first(name: "retry-after").flatMap(Int.init).map { Duration.seconds($0) }
            if retry(after: nil, status: code, wait: retryAfter) {
                // The failed answer is not read: its connection goes.
                self.connection = nil
                connection.reader = nil
                connection.close()
                return
            }
        }
        if (100..<200).contains(code) {
            // An interim answer (100 Continue, 103 Early Hints) goes to the client as it is.
            let interim = HTTPResponse(status: .init(code: code), headerFields: ProxyHeaders.response(response.headers))
            context.writeAndFlush(NIOAny(HTTPResponsePart.head(interim)), promise: nil)
            return
        }
        handler?.answerArrived()
        record.reportUpstream(upstream.name, instance: pick?.address, latency: .now - pickedAt)
        status = code
        isKeepAlive = response.isKeepAlive
        var fields = ProxyHeaders.response(response.headers)
        decorate(&fields)
        hasAnswerStarted = true
        let status = HTTPResponse.Status(code: code, reasonPhrase: response.status.reasonPhrase)
        context.write(NIOAny(HTTPResponsePart.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        guard case .forwarding = phase else { return }
        record.addOut(buffer.readableBytes)
        context.write(NIOAny(HTTPResponsePart.body(buffer)), promise: nil)
        if !context.channel.isWritable { connection?.holdReads(true) }
    }

    func upstreamReadComplete() {
        if hasAnswerStarted, case .forwarding = phase { context.flush() }
    }

    func upstreamWritabilityChanged() {
        if connection?.isWritable == true { handler?.resumeReading() }
    }

    func upstreamEnd() {
        guard case .forwarding = phase, let connection else { return }
        self.connection = nil
        connection.reader = nil
        if isKeepAlive, hasRequestEnded { pool.release(connection) } else { connection.close() }
        finishLease(status >= 500 ? .failure : .success, status: status)
        if hasRequestEnded {
            context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil)), promise: nil)
        } else {
            // The instance answered before the request's body ended: the rest of it has nowhere to go.
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil)), promise: written)
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
        complete(status: status, aborted: false)
    }

    func upstreamFailed(_ error: any Error) {
        guard case .forwarding = phase, let connection else { return }
        self.connection = nil
        connection.close()
        if !hasAnswerStarted, connection.isReused, !hasRetried, isReplayable {
            // A kept-alive connection the instance had closed: nothing of the request can have been served.
            hasRetried = true
            pending = [.end(nil)]
            return connect()
        }
        if !hasAnswerStarted, isReplayable, retry(after: error, status: 502) { return }
        guard hasAnswerStarted else { return failed(error) }
        // Part of the answer is out: the client learns of the break by the connection closing.
        finishLease(.failure, status: status)
        logger.notice(
            "upstream broke off an answer",
            metadata: ["upstream": "\(upstream.name)", "instance": "\(pick?.address ?? "")", "error": "\(error)"])
        context.close(promise: nil)
        complete(status: status, aborted: true)
    }

    /// The instance switched protocols: the `101` goes to the client, then both connections leave HTTP and their
    /// bytes are relayed as they are until either side closes or both are idle for the tunnel's time-out.
    private func upgrade(_ response: HTTPResponseHead, on connection: UpstreamConnection) {
        handler?.answerArrived()
        record.reportUpstream(upstream.name, instance: pick?.address, latency: .now - pickedAt)
        self.connection = nil
        var fields = ProxyHeaders.response(response.headers, keepingUpgrade: true)
        fields[.connection] = "Upgrade"
        fields[RequestIDMiddleware.header] = requestID
        context.write(
            NIOAny(HTTPResponsePart.head(HTTPResponse(status: .switchingProtocols, headerFields: fields))), promise: nil
        )
        // No body follows a 101; the end keeps the connection handlers' count of answers.
        context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil)), promise: nil)
        let (clientSide, upstreamSide) = TunnelRelay.pair()
        do {
            let pipeline = context.pipeline.syncOperations
            // Its idle time-out counts HTTP requests; the tunnel has its own.
            pipeline.removeHandler(try pipeline.handler(type: HTTPConnectionStateHandler.self), promise: nil)
            // Before the HTTP encoder and decoder, after TLS (when the listener has it): the relay reads and
            // writes plain bytes.
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            try pipeline.addHandler(clientSide, position: .before(encoder))
            try pipeline.addHandler(
                IdleStateHandler(allTimeout: environment.tunnelIdleTimeout), position: .before(clientSide))
            connection.upgrade(to: upstreamSide)
        } catch {
            logger.notice("upgrade failed", metadata: ["error": "\(error)"])
            connection.close()
            context.close(promise: nil)
        }
        finishLease(.success, status: 101)
        complete(status: 101, aborted: false)
    }

    // MARK: Retries

    /// Whether the request can be sent again after it went out: an idempotent method (RFC 9110 §9.2.2) and no body
    /// (bodies stream through and no copy is kept).
    private var isReplayable: Bool {
        !hasBody && hasRequestEnded
            && [.get, .head, .options, .trace, .put, .delete].contains(head.method)
    }

    /// Sends the request to another instance after an attempt failed with `status` (502 for no answer), when the
    /// upstream's ``RetryPolicy`` allows another attempt, its budget has room and the wait (`wait`, a 503's
    /// Retry-After, or the policy's jittered back-off) ends before the request's deadline. False: answer the
    /// failure.
    private func retry(after error: (any Error)?, status: Int, wait: Duration? = nil) -> Bool {
        let policy = upstream.definition.retry
        guard let failed = pick, attempt < policy.attempts, !hasAnswerStarted else { return false }
        var random = SystemRandomNumberGenerator()
        let delay = wait ?? policy.delay(beforeRetry: attempt, using: &random)
        guard ContinuousClock.now + delay < deadline, upstream.startRetry() else { return false }
        finishLease(.failure, status: status)
        holdsRetryPlace = true
        attempt += 1
        phase = .connecting
        if pending.isEmpty, hasRequestEnded, !hasBody { pending = [.end(nil)] }
        environment.metrics.upstreamRetried(upstream: upstream.name)
        logger.notice(
            "retrying upstream request",
            metadata: [
                "upstream": "\(upstream.name)", "instance": "\(failed.address)", "status": "\(status)",
                "attempt": "\(attempt)", "error": "\(error.map { "\($0)" } ?? "-")",
            ])
        retryTask = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay / .nanoseconds(1)))) {
            self.retryTask = nil
            guard case .connecting = self.phase else { return }
            let next: UpstreamGroup.Pick
            let (choice, transition) = self.upstream.choose(avoiding: failed.address)
            self.report(transition, of: choice)
            switch choice {
            case .instance(let chosen): next = chosen
            case .noneEligible: return self.answerNoInstance()
            case .saturated: return self.answerSaturated()
            }
            self.pick = next
            self.isLeaseFinished = false
            self.pickedAt = .now
            self.record.reportUpstream(self.upstream.name, instance: next.address, latency: nil)
            self.connect()
        }
        return true
    }

    // MARK: Endings

    /// Retry-After: when the first instance returns from its ejection or open breaker, else a health check's interval.
    private func answerNoInstance() {
        environment.metrics.healthyInstances(upstream: upstream.name, count: 0)
        let wait = upstream.nextReturn ?? upstream.definition.healthCheck?.interval ?? .seconds(1)
        answer(
            KubinError(
                .noHealthyUpstream, "No instance of the upstream '\(upstream.name)' may receive requests now.",
                retryAfterSeconds: max(1, Int((wait / .seconds(1)).rounded(.up)))))
    }

    private func answerSaturated() {
        environment.metrics.upstreamSaturated(upstream: upstream.name)
        answer(
            KubinError(
                .upstreamSaturated,
                "The upstream '\(upstream.name)' has \(upstream.definition.maxRequests) requests in flight, as many as "
                    + "it takes; retry shortly.",
                retryAfterSeconds: 1))
    }

    /// No answer head within the upstream's request time-out (``ProxyHandler`` watches it).
    func timedOut() {
        switch phase {
        case .connecting,
            .forwarding where !hasAnswerStarted:
            break
        default: return
        }
        connection?.close()
        connection = nil
        finishLease(.failure, status: 504)
        logger.notice(
            "upstream request timed out",
            metadata: ["upstream": "\(upstream.name)", "instance": "\(pick?.address ?? "")"])
        answer(
            KubinError(
                .gatewayTimeout,
                "The upstream '\(upstream.name)' did not answer within \(upstream.definition.requestTimeout)."))
    }

    /// No connection, or one that broke before the answer's head: 502.
    private func failed(_ error: any Error) {
        finishLease(.failure, status: 502)
        logger.notice(
            "upstream request failed",
            metadata: ["upstream": "\(upstream.name)", "instance": "\(pick?.address ?? "")", "error": "\(error)"])
        answer(KubinError(.badGateway, "The upstream '\(upstream.name)' could not be reached or broke off."))
    }

    /// The client's connection closed: the upstream request is cancelled with its connection.
    func clientClosed() {
        if case .done = phase { return }
        connection?.close()
        connection = nil
        finishLease(.abandoned, status: 499)
        complete(status: 499, aborted: true)
    }

    /// Answers with a problem document of the gateway's own.
    private func answer(_ error: KubinError, headers: HTTPFields = [:]) {
        let (response, body) = Problem.parts(for: error, path: path, requestID: requestID, extraHeaders: headers)
        respond(response, body: body)
    }

    private func respond(_ response: HTTPResponse, body: ByteBuffer? = nil) {
        var response = response
        decorate(&response.headerFields)
        if announcesBody, !hasRequestEnded {
            // The rest of the body is not read (see LingeringCloseHandler).
            response.headerFields[.connection] = "close"
        }
        if let body { response.headerFields[.contentLength] = String(body.readableBytes) }
        context.write(NIOAny(HTTPResponsePart.head(response)), promise: nil)
        if let body, body.readableBytes > 0 {
            record.addOut(body.readableBytes)
            context.write(NIOAny(HTTPResponsePart.body(body)), promise: nil)
        }
        context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil)), promise: nil)
        complete(status: response.status.code, aborted: false)
    }

    /// The headers every answer gets: the request id, the rate limit's, the security headers, CORS; and
    /// `Connection: close` when the client asked for it (RFC 9112 §9.6) or asked for an upgrade it does not get (NIO's
    /// decoder reads nothing more on that connection).
    private func decorate(_ fields: inout HTTPFields) {
        fields[RequestIDMiddleware.header] = requestID
        for field in answerHeaders { fields[field.name] = field.value }
        environment.securityHeaders.apply(to: &fields, path: path)
        if let origin = head.headerFields[.origin] { environment.cors.decorate(&fields, origin: origin) }
        if isUpgrade || head.headerFields[values: .connection].contains(where: { $0.lowercased().contains("close") }) {
            fields[.connection] = "close"
        }
    }

    /// Whether the head announces a body (a `Content-Length` above zero, or a transfer coding).
    private var announcesBody: Bool {
        head.headerFields[.contentLength].map { $0 != "0" } ?? (head.headerFields[.transferEncoding] != nil)
    }

    /// The client's request broke while its body arrived (a malformed chunk, one declaring more than the gateway
    /// takes): answered when nothing of the answer is out, and the connection closes either way.
    func requestFailed(_ error: any Error) {
        if case .done = phase { return }
        connection?.close()
        connection = nil
        finishLease(.abandoned, status: 400)
        guard !hasAnswerStarted else {
            context.close(promise: nil)
            return complete(status: status, aborted: true)
        }
        answer(
            error is ChunkTooLarge
                ? KubinError(.payloadTooLarge, "A chunk of the body declares more bytes than the gateway takes.")
                : KubinError(.malformedRequest, "The request body's framing is not valid HTTP/1.1 (\(error))."),
            headers: [.connection: "close"])
    }

    private func complete(status: Int, aborted: Bool) {
        phase = .done
        pending = []
        retryTask?.cancel()
        releaseRetryPlace()
        record.finish(status: status, route: "proxy:\(route.name)", aborted: aborted)
        let handler = handler
        self.handler = nil
        handler?.exchangeAnswered(self)
    }

    private var isLeaseFinished = false

    private func report(_ transition: CircuitBreaker.Transition?, of choice: UpstreamGroup.Choice) {
        if case .instance(let pick) = choice { report(transition, instance: pick.address) }
    }

    /// A breaker's change goes to the log and the gauge.
    private func report(_ transition: CircuitBreaker.Transition?, instance: String) {
        guard let transition else { return }
        environment.metrics.circuitBreakerChanged(
            transition, dependency: "upstream \(upstream.name) \(instance)", logger: logger)
    }

    private func releaseRetryPlace() {
        guard holdsRetryPlace else { return }
        holdsRetryPlace = false
        upstream.retryEnded()
    }

    /// The instance's in-flight count drops, outlier detection learns the outcome, the upstream metrics count it.
    private func finishLease(_ outcome: UpstreamState.Outcome, status: Int) {
        guard let pick, !isLeaseFinished else { return }
        isLeaseFinished = true
        releaseRetryPlace()
        let finished = upstream.finish(pick, outcome: outcome, duration: .now - pickedAt)
        if finished.ejected {
            environment.metrics.healthyInstances(upstream: upstream.name, count: upstream.eligibleAddresses.count)
        }
        report(finished.transition, instance: pick.address)
        environment.metrics.upstreamRequestFinished(
            upstream: upstream.name, instance: pick.address, status: status, duration: .now - pickedAt)
    }
}

/// Whether a proxied request may go on: its caller authenticated with the route's scopes, within its rate.
private enum Admission: Sendable {
    case admitted(Principal, rateLimitHeaders: HTTPFields)
    case refused(KubinError, headers: HTTPFields)

    static func check(
        _ head: HTTPRequest, route: RoutingTable.Route, environment: ProxyEnvironment, channel: any Channel,
        logger: Logger
    ) async -> Admission {
        do {
            let principal = try await environment.auth.principal(
                for: head, routeScopes: route.scopes, channel: channel, logger: logger)
            let routeClass: RateLimiter.RouteClass? =
                switch route.rateLimit {
                case .byMethod: RateLimitMiddleware.routeClass(of: head.method)
                case .routeClass(let chosen): chosen
                case .off: nil
                }
            guard let routeClass,
                let verdict = await environment.rateLimits.verdict(for: routeClass, principal: principal)
            else { return .admitted(principal, rateLimitHeaders: [:]) }
            if let refusal = verdict.refusal { return .refused(refusal, headers: verdict.headers) }
            return .admitted(principal, rateLimitHeaders: verdict.headers)
        } catch let error as KubinError {
            return .refused(error, headers: [:])
        } catch {
            logger.error("authentication failed unexpectedly", metadata: ["error": "\(String(reflecting: error))"])
            return .refused(
                KubinError(.internalError, "An unexpected error occurred; the request id identifies it in the logs."),
                headers: [:])
        }
    }
}

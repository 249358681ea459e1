import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The keep-alive connections to upstream instances, one pool per event loop: a proxied request takes a connection
/// on its own client connection's loop, so both sides of the exchange run on one thread without a hop (what makes
/// the proxy fast; AsyncHTTPClient hands its connections across loops and through Swift concurrency).
final class UpstreamPools: Sendable {
    private let pools = Mutex<[ObjectIdentifier: NIOLoopBound<UpstreamPool>]>([:])
    private let maxConnectionsPerInstance: Int

    /// Pools that open at most `maxConnectionsPerInstance` connections to one instance from each event loop.
    init(maxConnectionsPerInstance: Int) { self.maxConnectionsPerInstance = maxConnectionsPerInstance }

    /// The pool of `eventLoop`; call on that loop.
    func pool(on eventLoop: any EventLoop) -> UpstreamPool {
        let key = ObjectIdentifier(eventLoop)
        let bound = pools.withLock { pools in
            if let pool = pools[key] { return pool }
            let pool = NIOLoopBound(
                UpstreamPool(eventLoop: eventLoop, limit: maxConnectionsPerInstance), eventLoop: eventLoop)
            pools[key] = pool
            return pool
        }
        return bound.value
    }

    /// Closes every idle connection (at shutdown; connections in use close when their exchange ends).
    func closeIdle() async {
        let all = pools.withLock { Array($0.values) }
        for pool in all {
            try? await pool.eventLoop.submit { pool.value.closeIdle() }.get()
        }
    }
}

/// The connections of one event loop to every instance, by upstream and instance address (`http://10.0.0.7:8080`;
/// two upstreams of one address may present different client certificates). Idle ones wait for the next request to
/// the instance and close after the upstream's `timeouts.idle`; past `limit` open connections to one instance, a
/// request waits for one to come back.
final class UpstreamPool {
    /// Hands out a connection or the reason there is none.
    typealias Waiter = (Result<UpstreamConnection, any Error>) -> Void

    private struct Instance {
        var idle: [UpstreamConnection] = []
        var open = 0
        var waiters = CircularBuffer<(group: UpstreamGroup, waiter: Waiter)>()
    }

    let eventLoop: any EventLoop
    private let limit: Int
    private var instances: [Key: Instance] = [:]

    /// Holds its group, so a group freed by a reload cannot lend its identity (and connections with its TLS
    /// identity) to a new one.
    fileprivate struct Key: Hashable {
        var group: UpstreamGroup
        var address: String

        static func == (left: Key, right: Key) -> Bool { left.group === right.group && left.address == right.address }

        func hash(into hasher: inout Hasher) {
            hasher.combine(ObjectIdentifier(group))
            hasher.combine(address)
        }
    }

    init(eventLoop: any EventLoop, limit: Int) {
        self.eventLoop = eventLoop
        self.limit = limit
    }

    /// A connection to `address` of `group`: an idle one, a new one, or (at the limit) the next one released.
    /// `waiter` may run before this returns.
    func acquire(_ address: String, of group: UpstreamGroup, _ waiter: @escaping Waiter) {
        let key = Key(group: group, address: address)
        var instance = instances[key, default: Instance()]
        while let connection = instance.idle.popLast() {
            guard connection.isUsable else { continue }
            instances[key] = instance
            connection.leaveIdle()
            waiter(.success(connection))
            return
        }
        guard instance.open < group.definition.maxConnectionsPerInstance ?? limit else {
            instance.waiters.append((group, waiter))
            instances[key] = instance
            return
        }
        instance.open += 1
        instances[key] = instance
        connect(key, of: group, waiter)
    }

    /// Takes `connection` back after a complete exchange: to a waiting request, or idle.
    func release(_ connection: UpstreamConnection) {
        guard connection.isUsable, let key = connection.key else { return }
        if var instance = instances[key], let next = instance.waiters.popFirst() {
            instances[key] = instance
            // As from idle: reading again (the last exchange may have paused it), and known reused.
            connection.leaveIdle()
            next.waiter(.success(connection))
            return
        }
        instances[key, default: Instance()].idle.append(connection)
        connection.enterIdle(timeout: .nanoseconds(Int64(key.group.definition.idleTimeout / .nanoseconds(1))))
    }

    /// A connection of this pool closed (by either side, idle or not).
    func closed(_ connection: UpstreamConnection) {
        guard let key = connection.key, var instance = instances[key] else { return }
        instance.idle.removeAll { $0 === connection }
        instance.open -= 1
        let next = instance.waiters.popFirst()
        if next != nil { instance.open += 1 }
        store(instance, at: key)
        if let next { connect(key, of: next.group, next.waiter) }
    }

    func closeIdle() {
        for instance in instances.values {
            for connection in instance.idle { connection.close() }
        }
    }

    private func connect(_ key: Key, of group: UpstreamGroup, _ waiter: @escaping Waiter) {
        let address = key.address
        guard let target = UpstreamAddress(address) else {
            closedBeforeUse(key)
            waiter(.failure(UpstreamAddress.Invalid(address: address)))
            return
        }
        let sslContext = target.isTLS ? group.sslContext : nil
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(Int64(group.definition.connectTimeout / .nanoseconds(1))))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if target.isTLS {
                        guard let sslContext else { throw UpstreamAddress.Invalid(address: address) }
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: target.serverName))
                    }
                    // The head is built from fields the server side validated.
                    // The head's framing is the proxy's (ProxyHeaders keeps Content-Length or says chunked): the
                    // encoder must not drop it for a method it thinks has no body (TRACE), or a body would be
                    // read upstream as another request. 1xx answers go on to the client; bytes after a `101` go on
                    // to the tunnel relay (``UpstreamConnection/upgrade(to:)``). The decoder after the encoder
                    // sees each request head go out (a HEAD's answer has no body).
                    var framing = HTTPRequestEncoder.Configuration()
                    framing.automaticallySetFramingHeaders = false
                    try channel.pipeline.syncOperations.addHandlers([
                        HTTPRequestEncoder(configuration: framing),
                        ByteToMessageHandler(
                            HTTPResponseDecoder(
                                leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)),
                    ])
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection(address: address))
                }
            }
        let connecting =
            if let ip = try? SocketAddress(ipAddress: target.host, port: target.port) {
                bootstrap.connect(to: ip)
            } else {
                bootstrap.connect(host: target.host, port: target.port)
            }
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                do {
                    let connection = try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
                    connection.pool = self
                    connection.key = key
                    waiter(.success(connection))
                } catch {
                    channel.close(promise: nil)
                    self.closedBeforeUse(key)
                    waiter(.failure(error))
                }
            case .failure(let error):
                self.closedBeforeUse(key)
                waiter(.failure(error))
            }
        }
    }

    /// A connection counted as open never came to be.
    private func closedBeforeUse(_ key: Key) {
        guard var instance = instances[key] else { return }
        instance.open -= 1
        let next = instance.waiters.popFirst()
        if next != nil { instance.open += 1 }
        store(instance, at: key)
        if let next { connect(key, of: next.group, next.waiter) }
    }

    /// Keeps what is known of an instance, or forgets it once nothing is open or waiting.
    private func store(_ instance: Instance, at key: Key) {
        if instance.open == 0, instance.idle.isEmpty, instance.waiters.isEmpty {
            instances[key] = nil
        } else {
            instances[key] = instance
        }
    }
}

/// An instance's address split for connecting: `http://10.0.0.7:8080`, `https://reports.kubin.svc`, `http://[::1]:9`.
struct UpstreamAddress {
    struct Invalid: Error, CustomStringConvertible {
        var address: String
        var description: String { "'\(address)' is no http:// or https:// address of a host and port" }
    }

    var isTLS: Bool
    var host: String
    var port: Int

    init?(_ address: String) {
        let rest: Substring
        if address.hasPrefix("http://") {
            (isTLS, rest) = (false, address.dropFirst(7))
        } else if address.hasPrefix("https://") {
            (isTLS, rest) = (true, address.dropFirst(8))
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" }
        let hostPart: Substring
        var portPart: Substring?
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
        }
        guard !hostPart.isEmpty else { return nil }
        host = String(hostPart)
        if let portPart {
            guard let port = Int(portPart), (1...65535).contains(port) else { return nil }
            self.port = port
        } else {
            port = isTLS ? 443 : 80
        }
    }

    /// The name for SNI and certificate checks; nil for an IP address (SNI carries names only).
    var serverName: String? {
        (try? SocketAddress(ipAddress: host, port: port)) == nil ? host : nil
    }
}

/// The client side of one upstream connection: hands the answer's parts to the exchange using it, and holds reads
/// while the exchange's client cannot take more (back-pressure from the client to the upstream).
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The exchange that reads this connection's answers.
    protocol Reader: AnyObject {
        func upstreamHead(_ head: HTTPResponseHead)
        func upstreamBody(_ buffer: ByteBuffer)
        func upstreamEnd()
        /// A burst of reads ended: time to flush what was written to the client.
        func upstreamReadComplete()
        func upstreamWritabilityChanged()
        /// The connection closed or failed before the answer ended.
        func upstreamFailed(_ error: any Error)
    }

    let address: String
    /// The pool of its event loop (which lives as long as the process). No reference here is weak: weak references
    /// put every retain of their object on Swift's slow path, and these are retained per request.
    fileprivate(set) var pool: UpstreamPool?
    fileprivate var key: UpstreamPool.Key?
    private var context: ChannelHandlerContext?
    /// Set while an exchange uses the connection, nil again when it ends.
    var reader: (any Reader)?
    /// Whether it served an exchange before (a closed keep-alive connection is then retried once on a fresh one).
    private(set) var isReused = false
    private var isClosed = false
    /// When an idle connection closes.
    private var idleTimer = DeadlineTimer<NIOScheduledCallback>()
    private var isHoldingReads = false
    private var isReadPending = false
    /// Set by ``upgrade(to:)`` until the `101` has ended.
    private var tunnel: TunnelRelay?

    init(address: String) { self.address = address }

    var isUsable: Bool { !isClosed && context?.channel.isActive == true }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): reader?.upstreamHead(head)
        case .body(let buffer): reader?.upstreamBody(buffer)
        case .end:
            if let tunnel {
                self.tunnel = nil
                enterTunnel(tunnel, context: context)
            } else {
                reader?.upstreamEnd()
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { reader?.upstreamReadComplete() }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        reader?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reader = reader
        self.reader = nil
        reader?.upstreamFailed(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        idleTimer.cancel()
        let reader = reader
        self.reader = nil
        reader?.upstreamFailed(ChannelError.ioOnClosedChannel)
        pool?.closed(self)
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if isHoldingReads {
            isReadPending = true
        } else {
            context.read()
        }
    }

    /// Stops or resumes reading the answer (the client's side is full, or has room again).
    func holdReads(_ hold: Bool) {
        isHoldingReads = hold
        if !hold, isReadPending, let context {
            isReadPending = false
            context.read()
        }
    }

    func write(_ part: HTTPClientRequestPart, flush: Bool) {
        guard let context else { return }
        context.write(wrapOutboundOut(part), promise: nil)
        if flush { context.flush() }
    }

    func flush() { context?.flush() }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        reader = nil
        context?.close(promise: nil)
    }

    /// Leaves HTTP (and the pool) after a `101`: once the decoder has ended that answer, `relay` takes the channel's
    /// bytes, including any that came with the answer's head.
    func upgrade(to relay: TunnelRelay) {
        pool?.closed(self)
        pool = nil
        reader = nil
        holdReads(false)
        tunnel = relay
    }

    private func enterTunnel(_ relay: TunnelRelay, context: ChannelHandlerContext) {
        do {
            let pipeline = context.pipeline.syncOperations
            let encoder = try pipeline.handler(type: HTTPRequestEncoder.self)
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
            try pipeline.addHandler(relay)
            pipeline.removeHandler(self, promise: nil)
            pipeline.removeHandler(encoder, promise: nil)
            // Last: the decoder forwards the bytes it holds to the relay as it leaves.
            pipeline.removeHandler(decoder, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }

    fileprivate func leaveIdle() {
        idleTimer.clear()
        isReused = true
        holdReads(false)
    }

    fileprivate func enterIdle(timeout: TimeAmount) {
        reader = nil
        holdReads(false)
        idleTimer.watch(.now() + timeout, arm: arm)
    }

    private func arm(at deadline: NIODeadline) -> NIOScheduledCallback? {
        try? context?.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: self)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        if idleTimer.fired(now: .now(), arm: arm) { close() }
    }
}

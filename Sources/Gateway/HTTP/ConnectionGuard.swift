import HTTPTypes
import KubinModel
import KubinSupport
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization

/// The connections of one listener, counted so that past `limit` a new one is answered
/// `503 too-many-connections` and closed at once, instead of holding memory and a file descriptor.
final class ConnectionCount: Sendable {
    /// The most connections served at once.
    let limit: Int
    private let open = Atomic<Int>(0)

    /// A count that admits `limit` connections.
    init(limit: Int) { self.limit = limit }

    /// Counts a new connection; false (and not counted) when the limit is reached.
    func admit() -> Bool { open.incrementIf { $0 < limit } }

    /// A counted connection closed.
    func release() { open.subtract(1, ordering: .relaxed) }
}

/// One connection's guard against slow and surplus clients (placed after ``LingeringCloseHandler``, which ends the
/// connection after the guard's `Connection: close` answers).
///
/// - Past the ``ConnectionCount`` limit the connection gets `503 too-many-connections` and is closed.
/// - A request head must arrive whole within `headTimeout` of its first byte, or the client gets
///   `408 request-timeout` and the connection closes: a client trickling its headers (slowloris) cannot hold a
///   connection open. Waiting between requests is the idle timeout's business, not this one's.
/// - A request that starts with `CONNECT` while nothing is being served gets `501 not-implemented`, framed and
///   whole, and the connection closes, before the HTTP decoder sees it: once the decoder has taken a CONNECT, it
///   reads what follows as a tunnel and NIO frames no body for its answer.
/// - A chunk declaring more than `maxChunkBytes` (read by a ``ChunkSizeWatch``) ends its request's body at once
///   with ``ChunkTooLarge``, which the route answers (413), and the connection closes after that answer.
///
/// The first byte is seen by a companion handler placed before the HTTP decoder (which only passes on whole heads).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests: no byte of the next one yet.
        case waiting
        /// Bytes of a head have arrived; it must be whole by the timer's deadline.
        case readingHead
        /// A request is being served.
        case serving
        /// Answered by the guard itself and closing.
        case closing
    }

    private let connections: ConnectionCount
    private let headTimeout: TimeAmount
    private var state = State.waiting
    private var timer = DeadlineTimer<NIOScheduledCallback>()
    private var isCounted = false
    private var chunks: ChunkSizeWatch
    private var isRefusingBody = false
    private var context: ChannelHandlerContext?

    /// A guard for one connection.
    init(connections: ConnectionCount, headTimeout: Duration, maxChunkBytes: Int64) {
        self.connections = connections
        self.headTimeout = .nanoseconds(Int64(headTimeout / .nanoseconds(1)))
        self.chunks = ChunkSizeWatch(limit: UInt64(maxChunkBytes))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Unowned, not weak: a weak reference puts every retain of the guard on Swift's slow path. The observer
        // leaves the pipeline with the guard.
        let observer = FirstByteObserver { [unowned self] bytes in bytesArrived(bytes, context: context) }
        // Before the HTTP decoder, after TLS when the listener has it: the observer must see plain bytes.
        let pipeline = context.pipeline.syncOperations
        if let decoder = try? pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            try? pipeline.addHandler(observer, position: .before(decoder))
        } else {
            try? pipeline.addHandler(observer, position: .first)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        guard connections.admit() else {
            answer(
                KubinError(
                    .tooManyConnections,
                    "This instance serves \(connections.limit) connections at once; retry shortly.",
                    retryAfterSeconds: 1), context: context)
            return
        }
        isCounted = true
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.cancel()
        releaseOnce()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        releaseOnce()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            guard case .closing = state else {
                timer.clear()
                state = .serving
                context.fireChannelRead(data)
                return
            }
            return
        }
        if case .closing = state { return }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where isRefusingBody:
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
            return
        case .end:
            if case .serving = state { state = .waiting }
        default:
            break
        }
        context.write(data, promise: promise)
    }

    /// Bytes arrived (called by the observer before the decoder sees them); false: they are not to be decoded.
    private func bytesArrived(_ bytes: ByteBuffer, context: ChannelHandlerContext) -> FirstByteObserver.Arrival {
        if isRefusingBody { return .drop }
        if case .tooLarge(let size, let offset) = bytes.withUnsafeReadableBytes({ chunks.feed($0) }) {
            isRefusingBody = true
            return .fail(passing: bytes.getSlice(at: bytes.readerIndex, length: offset)!, ChunkTooLarge(size: size))
        }
        guard case .waiting = state else { return .pass }
        if bytes.readableBytesView.starts(with: Self.connect) {
            answer(RequestFramingMiddleware.connectRefused, context: context)
            return .drop
        }
        state = .readingHead
        timer.watch(.now() + headTimeout, arm: arm)
        return .pass
    }

    /// A scheduled callback, not a task: no promise made and failed.
    private func arm(at deadline: NIODeadline) -> NIOScheduledCallback? {
        try? context?.eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: self)
    }

    private static let connect = Array("CONNECT ".utf8)

    func handleScheduledCallback(eventLoop: some EventLoop) {
        guard timer.fired(now: .now(), arm: arm), case .readingHead = state, let context else { return }
        answer(
            KubinError(
                .requestTimeout, "The request head did not arrive within \(headTimeout.nanoseconds / 1_000_000) ms."),
            context: context)
    }

    func didCancelScheduledCallback(eventLoop: some EventLoop) {}

    private func answer(_ error: KubinError, context: ChannelHandlerContext) {
        state = .closing
        let (head, body) = Problem.channelAnswer(for: error)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        // `Connection: close` on the answer: the lingering-close handler ends the connection.
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func releaseOnce() {
        if isCounted {
            isCounted = false
            connections.release()
        }
    }
}

/// Tells its owner when bytes arrive on the connection, before the HTTP decoder has a whole head to pass on.
private final class FirstByteObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// What becomes of a read.
    enum Arrival {
        /// It goes on to the decoder.
        case pass
        /// It is dropped.
        case drop
        /// `passing` (what came before the fault) goes on, then the error: the request that the passed bytes carry
        /// sees its body fail with it, and what follows is dropped by the owner.
        case fail(passing: ByteBuffer, any Error)
    }

    private let arrived: (ByteBuffer) -> Arrival

    /// `arrived` sees every read first and says what becomes of it.
    init(_ arrived: @escaping (ByteBuffer) -> Arrival) { self.arrived = arrived }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch arrived(unwrapInboundIn(data)) {
        case .pass:
            context.fireChannelRead(data)
        case .drop:
            break
        case .fail(let passing, let error):
            if passing.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(passing)) }
            context.fireErrorCaught(error)
        }
    }
}

/// A chunk of a request body declared more bytes than any upload may hold (at least `size`: the reading stopped
/// there).
package struct ChunkTooLarge: Error {
    /// The declared size as far as it was read.
    package let size: UInt64
}

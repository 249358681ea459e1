import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Ends a connection after an answer that says `Connection: close`, without reading an unwanted body to its end.
///
/// Hummingbird reads and discards the rest of a request body the handler did not consume (an upload refused with
/// 429 or 413, say), however large. After such an answer this handler closes the write side (the client sees the
/// answer, then end of stream), lets the client's bytes in flight arrive for a moment so the answer is not destroyed
/// by a reset, and closes the connection after `lingerTime` or `lingerBytes`, whichever comes first, as nginx's
/// lingering close does.
final class LingeringCloseHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let lingerTime: TimeAmount
    private let lingerBytes: Int
    private var closeAfterResponse = false
    private var isLingering = false
    private var bytesWhileLingering = 0

    /// Closes a lingering connection after `lingerTime`, or sooner once `lingerBytes` more body bytes arrive.
    init(lingerTime: TimeAmount = .seconds(2), lingerBytes: Int = 1 << 20) {
        self.lingerTime = lingerTime
        self.lingerBytes = lingerBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if isLingering, case .body(let buffer) = unwrapInboundIn(data) {
            bytesWhileLingering += buffer.readableBytes
            if bytesWhileLingering > lingerBytes { context.close(promise: nil) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            if head.status.code >= 200, head.headerFields[.connection]?.lowercased() == "close" {
                closeAfterResponse = true
            }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            guard closeAfterResponse else {
                context.write(data, promise: promise)
                return
            }
            closeAfterResponse = false
            isLingering = true
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(data, promise: written)
            written.futureResult.cascade(to: promise)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let lingerTime = lingerTime
            written.futureResult.whenComplete { _ in
                let context = loopBound.value
                context.close(mode: .output, promise: nil)
                context.eventLoop.assumeIsolated().scheduleTask(in: lingerTime) { context.close(promise: nil) }
            }
        }
    }
}

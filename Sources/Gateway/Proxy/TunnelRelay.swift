import NIOCore

/// One side of an upgraded connection (a WebSocket after `101 Switching Protocols`): the bytes read on its channel
/// are written to its partner's as they are (frames, close frames included, pass untouched), reading stops while the
/// partner's channel cannot take more, and either side closing closes the other. The shape of NIO's example
/// "glue" handler, which is no library product: written here, tested by the WebSocket pass-through test.
final class TunnelRelay: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: TunnelRelay?
    private var context: ChannelHandlerContext?
    private var isReadPending = false

    private init() {}

    /// Two relays, one for each channel.
    static func pair() -> (TunnelRelay, TunnelRelay) {
        let (first, second) = (TunnelRelay(), TunnelRelay())
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Flushed at once: bytes the HTTP decoder held when it left the pipeline arrive after the read's
        // completion has passed, and would otherwise wait for the next read.
        partner?.context?.writeAndFlush(data, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The idle time-out (an IdleStateHandler before this one): no frame either way for that long.
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.context?.channel.isWritable == false {
            isReadPending = true
        } else {
            context.read()
        }
    }

    private func resumeReading() {
        guard isReadPending, let context else { return }
        isReadPending = false
        context.read()
    }
}

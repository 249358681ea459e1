import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Why a Redis call failed: a ``Code`` to switch on and a message for people (never a password).
package struct RedisError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    package enum Code: String, Sendable {
        /// No reply within the command timeout; the connection was closed.
        case timedOut
        /// The connection closed before the reply came.
        case connectionClosed
        /// A connect failed moments ago: none is tried again until its backoff has passed.
        case backingOff
        /// The server answered with an error (`ERR ...`, `NOSCRIPT ...`, a refused `AUTH`).
        case serverError
        /// A reply of a type the command never answers with.
        case unexpectedReply
    }

    package let code: Code
    package let message: String

    package var description: String { "Redis: \(message)" }

    static let timedOut = RedisError(code: .timedOut, message: "no reply in time; the connection was closed")
    static let closed = RedisError(code: .connectionClosed, message: "the connection closed")
}

/// One connection to a Redis server. Commands may be sent concurrently: they are pipelined, and replies are matched to
/// them in order (RESP replies arrive in command order). A command that times out closes the connection, since a late
/// reply would otherwise be taken for the next command's. Nothing here blocks an event loop.
package final class RedisConnection: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) { self.channel = channel }

    /// Connects to `host:port` (with TLS when `tls` is given) within `timeout`.
    package static func connect(
        host: String, port: Int, tls: NIOSSLContext?, timeout: Duration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> RedisConnection {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(Int64(timeout / .nanoseconds(1))))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let handler = try NIOSSLClientHandler(context: tls, serverHostname: host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(RESPDecoder()), RedisCommandHandler())
                }
            }
            .connect(host: host, port: port).get()
        return RedisConnection(channel: channel)
    }

    /// True while the connection can carry commands.
    package var isActive: Bool { channel.isActive }

    /// Sends one command and waits at most `timeout` for its reply. A server error reply is returned, not thrown.
    package func send(_ arguments: [ByteBuffer], timeout: Duration) async throws -> RESPValue {
        var encoded = channel.allocator.buffer(capacity: arguments.reduce(16) { $0 + $1.readableBytes + 16 })
        RESPValue.encodeCommand(arguments, into: &encoded)
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout / .nanoseconds(1)))) {
            [channel] in
            promise.fail(RedisError.timedOut)
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        channel.writeAndFlush(RedisCommandHandler.Command(bytes: encoded, reply: promise), promise: nil)
        return try await promise.futureResult.get()
    }

    /// Closes the connection; pending commands fail.
    package func close() async {
        try? await channel.close()
    }
}

/// Decodes RESP values from the byte stream.
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue
    let parser = RESPParser()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try parser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(value))
        return .continue
    }

    mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws
        -> DecodingState
    {
        try decode(context: context, buffer: &buffer)
    }
}

/// Writes commands and hands each reply to the oldest waiting command.
final class RedisCommandHandler: ChannelDuplexHandler {
    struct Command {
        var bytes: ByteBuffer
        var reply: EventLoopPromise<RESPValue>
    }

    typealias InboundIn = RESPValue
    typealias OutboundIn = Command
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        waiting.append(command.reply)
        context.write(wrapOutboundOut(command.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        guard let reply = waiting.popFirst() else {
            // A reply nobody asked for: the stream is out of step; nothing on it can be trusted.
            context.close(promise: nil)
            return
        }
        reply.succeed(value)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError.closed)
        context.fireChannelInactive()
    }

    private func failAll(_ error: any Error) {
        while let reply = waiting.popFirst() { reply.fail(error) }
    }
}

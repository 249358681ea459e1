import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// A bare TCP client for what an HTTP library will not do: send part of a request, then vanish.
enum RawClient {
    /// Connects, writes `parts` in order, then closes: with a reset (`abort`) or a normal close.
    static func sendThenClose(port: Int, _ parts: [[UInt8]], abort: Bool) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { _, outbound in
            for part in parts { try await outbound.write(ByteBuffer(bytes: part)) }
            if abort {
                try await (channel.channel as! any SocketOptionProvider).setSoLinger(linger(l_onoff: 1, l_linger: 0))
                    .get()
            }
        }
    }
}

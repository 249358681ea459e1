import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// A bare TCP client for what an HTTP library will not do: send part of a request then vanish, or hold a
/// conversation byte by byte (`Expect: 100-continue`).
enum RawClient {
    /// Connects, writes `parts` in order, then closes: with a reset (`abort`) or a normal close.
    static func sendThenClose(port: Int, _ parts: [[UInt8]], abort: Bool) async throws {
        let channel = try await connect(port: port)
        try await channel.executeThenClose { _, outbound in
            for part in parts { try await outbound.write(ByteBuffer(bytes: part)) }
            if abort {
                try await (channel.channel as! any SocketOptionProvider).setSoLinger(linger(l_onoff: 1, l_linger: 0))
                    .get()
            }
        }
    }

    /// A connection on which the test writes and reads raw HTTP.
    struct Conversation {
        var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
        var received = ""

        mutating func send(_ text: String) async throws { try await outbound.write(ByteBuffer(string: text)) }
        mutating func send(_ bytes: [UInt8]) async throws { try await outbound.write(ByteBuffer(bytes: bytes)) }

        /// Reads until the text received so far contains `marker`; returns everything up to and including it.
        mutating func read(through marker: String) async throws -> String {
            while !received.contains(marker) {
                guard let chunk = try await inbound.next() else { break }
                received += String(buffer: chunk)
            }
            guard let range = received.range(of: marker) else { return received }
            defer { received = String(received[range.upperBound...]) }
            return String(received[..<range.upperBound])
        }
    }

    /// Runs `body` with a fresh connection to the gateway.
    static func converse<Result: Sendable>(
        port: Int, _ body: (inout Conversation) async throws -> Result
    )
        async throws -> Result
    {
        let channel = try await connect(port: port)
        return try await channel.executeThenClose { inbound, outbound in
            var conversation = Conversation(inbound: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(&conversation)
        }
    }

    /// Sends `head` and `start`, then one byte every `interval` until the answer's head arrives; returns that head.
    static func trickle(port: Int, head: String, start: [UInt8], every interval: Duration) async throws -> String {
        let channel = try await connect(port: port)
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: Array(head.utf8) + start))
            return try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    // Shapes the load, a byte at a time; ends when the answer has come (cancelled) or the server
                    // stops reading.
                    while (try? await Task.sleep(for: interval)) != nil {
                        do { try await outbound.write(ByteBuffer(bytes: [0x41])) } catch { break }
                    }
                    return nil
                }
                var received = ""
                for try await chunk in inbound {
                    received += String(buffer: chunk)
                    if received.contains("\r\n\r\n") { break }
                }
                group.cancelAll()
                return received
            }
        }
    }

    private static func connect(port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }
}

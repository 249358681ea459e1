import Crypto
import NIOCore

/// A request body that sends its first chunk, then waits at `gate` before sending the rest: an upload that trickles
/// until the test lets it finish.
package struct GatedBody: AsyncSequence, Sendable {
    package typealias Element = ByteBuffer
    let chunks: [ByteBuffer]
    let gate: Gate

    /// `bytes` in chunks of `chunkSize`, held after the first.
    package init(_ bytes: [UInt8], chunkSize: Int = 16 * 1024, gate: Gate) {
        self.chunks = stride(from: 0, to: bytes.count, by: chunkSize).map {
            ByteBuffer(bytes: bytes[$0..<Swift.min($0 + chunkSize, bytes.count)])
        }
        self.gate = gate
    }

    package func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    /// Yields the chunks, waiting at the gate before the second.
    package struct Iterator: AsyncIteratorProtocol {
        let body: GatedBody
        var index = 0

        package mutating func next() async throws -> ByteBuffer? {
            if index == 1 { await body.gate.wait() }
            guard index < body.chunks.count else { return nil }
            defer { index += 1 }
            return body.chunks[index]
        }
    }
}

/// The SHA-256 of `bytes`, lowercase hex.
package func sha256Hex(_ bytes: some Sequence<UInt8>) -> String {
    SHA256.hash(data: Array(bytes)).map { byte in
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }.joined()
}

/// A JSON document of exactly `size` bytes (at least ~50), different for each `seed`.
package func jsonBody(_ size: Int, seed: Int = 0) -> [UInt8] {
    var text = "{\"kind\":\"NodeList\",\"seed\":\(seed),\"items\":[],\"pad\":\""
    text += String(repeating: "x", count: max(0, size - text.utf8.count - 2)) + "\"}"
    return Array(text.utf8)
}

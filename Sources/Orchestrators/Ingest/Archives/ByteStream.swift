import NIOCore

/// Reads an async sequence of byte buffers in exact amounts: the primitive under the tar reader and the dump parsers.
///
/// Not thread-safe: one reader task owns it.
package final class ByteStream<Source: AsyncIteratorProtocol> where Source.Element == ByteBuffer {
    private var source: Source
    private var buffered = ByteBuffer()
    private var isFinished = false
    /// Bytes handed out so far.
    package private(set) var position: Int64 = 0

    /// Reads from `source`.
    package init(_ source: Source) { self.source = source }

    /// The next `count` bytes; nil when the stream ends before any of them, an error when it ends midway.
    package func read(exactly count: Int) async throws -> ByteBuffer? {
        while buffered.readableBytes < count {
            guard try await fill() else {
                if buffered.readableBytes == 0 { return nil }
                throw ArchiveError(.corrupt, "The archive ends in the middle of a record (it is truncated).")
            }
        }
        position += Int64(count)
        return buffered.readSlice(length: count)
    }

    /// The next chunk of at most `limit` bytes (whatever is buffered or arrives next); nil at the end.
    package func readChunk(upTo limit: Int) async throws -> ByteBuffer? {
        if buffered.readableBytes == 0, try await !fill() { return nil }
        let count = min(limit, buffered.readableBytes)
        position += Int64(count)
        return buffered.readSlice(length: count)
    }

    /// Discards the next `count` bytes; an error when the stream ends first.
    package func skip(_ count: Int64) async throws {
        var remaining = count
        while remaining > 0 {
            guard let chunk = try await readChunk(upTo: Int(min(remaining, 1 << 20))) else {
                throw ArchiveError(.corrupt, "The archive ends in the middle of an entry (it is truncated).")
            }
            remaining -= Int64(chunk.readableBytes)
        }
    }

    /// The next `count` bytes (fewer at the end of the stream) without consuming them; nil when none is left.
    package func peek(count: Int) async throws -> ByteBuffer? {
        while buffered.readableBytes < count, try await fill() {}
        guard buffered.readableBytes > 0 else { return nil }
        return buffered.getSlice(at: buffered.readerIndex, length: min(count, buffered.readableBytes))
    }

    /// True when no byte is left.
    package func isAtEnd() async throws -> Bool {
        if buffered.readableBytes > 0 { return false }
        return try await !fill()
    }

    private func fill() async throws -> Bool {
        guard !isFinished else { return false }
        guard var next = try await source.next() else {
            isFinished = true
            return false
        }
        if buffered.readableBytes == 0 {
            buffered = next
        } else {
            buffered.discardReadBytes()
            buffered.writeBuffer(&next)
        }
        return true
    }
}

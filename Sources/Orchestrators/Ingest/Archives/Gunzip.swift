import CompressNIO
import NIOCore

/// gzip decompression of an async sequence of chunks, streamed: at most one input and one output chunk are held.
///
/// compress-nio's helpers accept a truncated stream silently and do not continue past the end of a gzip member, so
/// this drives zlib itself: concatenated members are read in turn, the end is required (a truncated stream fails),
/// trailing bytes that start no new member are ignored (as gzip does), and ``ExpansionLimits`` apply as it goes.
package struct Gunzip<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
    package typealias Element = ByteBuffer
    package typealias Failure = any Error

    let base: Base
    let limits: ExpansionLimits
    let chunkSize: Int

    /// Decompresses `base` in output chunks of at most `chunkSize` bytes (a power of two).
    package init(_ base: Base, limits: ExpansionLimits = .init(), chunkSize: Int = 64 * 1024) {
        self.base = base
        self.limits = limits
        self.chunkSize = chunkSize
    }

    package func makeAsyncIterator() -> Iterator {
        Iterator(base: base.makeAsyncIterator(), limits: limits, chunkSize: chunkSize)
    }

    /// Pulls compressed chunks as output is needed.
    package struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let limits: ExpansionLimits
        let chunkSize: Int
        var inflater: ZlibDecompressor?
        var input = ByteBuffer()
        var isInputFinished = false
        var isFinished = false
        var memberEnded = false
        var consumed: Int64 = 0
        var produced: Int64 = 0

        init(base: Base.AsyncIterator, limits: ExpansionLimits, chunkSize: Int) {
            self.base = base
            self.limits = limits
            self.chunkSize = chunkSize
        }

        package mutating func next() async throws -> ByteBuffer? {
            guard !isFinished else { return nil }
            if inflater == nil { inflater = try ZlibDecompressor(algorithm: .gzip) }
            var output = ByteBufferAllocator().buffer(capacity: chunkSize)
            while true {
                if input.readableBytes == 0, !isInputFinished {
                    if output.readableBytes > 0 { return try emit(output) }  // don't hold output while waiting
                    if let chunk = try await base.next() {
                        input = chunk
                        consumed += Int64(chunk.readableBytes)
                    } else {
                        isInputFinished = true
                    }
                    continue
                }
                if input.readableBytes > 0 {
                    if memberEnded {
                        if input.readableBytes < 2, !isInputFinished {  // too few bytes to tell a new member yet
                            if var chunk = try await base.next() {
                                consumed += Int64(chunk.readableBytes)
                                input.writeBuffer(&chunk)
                            } else {
                                isInputFinished = true
                            }
                            continue
                        }
                        guard input.readableBytesView.starts(with: [0x1F, 0x8B]) else {
                            input.moveReaderIndex(forwardBy: input.readableBytes)  // trailing bytes: ignored
                            continue
                        }
                        try inflater!.reset()
                        memberEnded = false
                    }
                    if output.writableBytes == 0 { return try emit(output) }
                    do {
                        try inflater!.inflate(from: &input, to: &output)
                        // zlib stops early only at the end of a member: input left over means the member ended.
                        if input.readableBytes > 0 { memberEnded = true }
                    } catch let error as CompressNIOError where error == .bufferOverflow {
                        return try emit(output)
                    } catch let error as CompressNIOError where error == .inputBufferOverflow {
                        continue  // needs more input
                    } catch {
                        throw ArchiveError(.corrupt, "The gzip stream is corrupt (\(error)).")
                    }
                    continue
                }
                // The input has ended: drain zlib and require the end of the last member.
                if memberEnded { return try finish(output) }
                if output.writableBytes == 0 { return try emit(output) }
                let before = output.readableBytes
                var empty = ByteBuffer()
                do {
                    try inflater!.inflate(from: &empty, to: &output)
                    if output.readableBytes == before { return try finish(output) }
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    return try emit(output)
                } catch let error as CompressNIOError where error == .inputBufferOverflow {
                    throw ArchiveError(.corrupt, "The gzip stream ends early: the archive is truncated.")
                } catch {
                    throw ArchiveError(.corrupt, "The gzip stream is corrupt (\(error)).")
                }
            }
        }

        private mutating func emit(_ output: ByteBuffer) throws -> ByteBuffer {
            produced += Int64(output.readableBytes)
            try limits.check(produced: produced, consumed: consumed)
            return output
        }

        private mutating func finish(_ output: ByteBuffer) throws -> ByteBuffer? {
            isFinished = true
            inflater = nil
            return output.readableBytes > 0 ? try emit(output) : nil
        }
    }
}

extension Gunzip: Sendable where Base: Sendable {}

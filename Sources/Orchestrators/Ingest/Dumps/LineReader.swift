import NIOCore

/// Splits a stream of chunks into lines (without `\n` and a trailing `\r`), holding at most one line plus one chunk.
///
/// A line longer than `maxLineBytes` is cut there: its first `maxLineBytes` bytes are returned as the line and the
/// rest is dropped, so one endless line cannot exhaust memory.
package final class LineReader {
    private let nextChunk: () async throws -> ByteBuffer?
    private let maxLineBytes: Int
    private var buffer = ByteBuffer()
    private var isFinished = false
    /// Lines returned so far.
    package private(set) var lineCount = 0

    /// Reads lines from the chunks `nextChunk` returns until it returns nil.
    package init(maxLineBytes: Int = 1 << 20, nextChunk: @escaping () async throws -> ByteBuffer?) {
        self.maxLineBytes = maxLineBytes
        self.nextChunk = nextChunk
    }

    /// Reads the lines of an archive entry's body.
    package convenience init(_ body: some ArchiveEntryBody, maxLineBytes: Int = 1 << 20) {
        self.init(maxLineBytes: maxLineBytes) { try await body.next(upTo: 256 * 1024) }
    }

    /// The next line, or nil at the end (a final line without `\n` still counts).
    package func next() async throws -> ByteBuffer? {
        var searched = 0
        while true {
            if let newline = buffer.readableBytesView.dropFirst(searched).firstIndex(of: UInt8(ascii: "\n")) {
                let length = newline - buffer.readerIndex
                var line = buffer.readSlice(length: length)!
                buffer.moveReaderIndex(forwardBy: 1)
                if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
                return emit(line)
            }
            searched = buffer.readableBytes
            if buffer.readableBytes > maxLineBytes {
                // Too long: keep the first part as the line, drop the rest up to the next newline.
                let line = buffer.readSlice(length: maxLineBytes)!
                try await skipRestOfLine()
                return emit(line)
            }
            guard !isFinished, var chunk = try await nextChunk() else {
                isFinished = true
                guard buffer.readableBytes > 0 else { return nil }
                let line = buffer.readSlice(length: buffer.readableBytes)!
                return emit(line)
            }
            if buffer.readableBytes == 0 {
                buffer = chunk
            } else {
                buffer.discardReadBytes()
                buffer.writeBuffer(&chunk)
            }
        }
    }

    private func emit(_ line: ByteBuffer) -> ByteBuffer {
        lineCount += 1
        return line
    }

    private func skipRestOfLine() async throws {
        while true {
            if let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                buffer.moveReaderIndex(to: newline + 1)
                return
            }
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            guard !isFinished, let chunk = try await nextChunk() else {
                isFinished = true
                return
            }
            buffer = chunk
        }
    }
}

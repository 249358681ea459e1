import NIOCore

/// Splits a stream of chunks into lines (without `\n` and a trailing `\r`), holding at most one line plus one chunk.
///
/// A line longer than `maxLineBytes` is cut there: its first `maxLineBytes` bytes are returned as the line and the
/// rest is dropped, so one endless line cannot exhaust memory. ``nextPiece()`` hands such a line over whole instead,
/// a piece at a time, for a reader (of a JSON document, say) that streams it.
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
        guard let (line, endsLine) = try await nextPiece() else { return nil }
        if !endsLine { try await skipRestOfLine() }
        return line
    }

    /// The next line, or the next `maxLineBytes` of a longer one (`endsLine` false: more of the same line follows);
    /// nil at the end.
    package func nextPiece() async throws -> (bytes: ByteBuffer, endsLine: Bool)? {
        var searched = 0
        while true {
            if let newline = buffer.readableBytesView.dropFirst(searched).firstIndex(of: UInt8(ascii: "\n")) {
                let length = newline - buffer.readerIndex
                var line = buffer.readSlice(length: length)!
                buffer.moveReaderIndex(forwardBy: 1)
                if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
                return (emit(line), true)
            }
            searched = buffer.readableBytes
            if buffer.readableBytes > maxLineBytes {
                return (buffer.readSlice(length: maxLineBytes)!, false)
            }
            guard !isFinished, var chunk = try await nextChunk() else {
                isFinished = true
                guard buffer.readableBytes > 0 else { return nil }
                let line = buffer.readSlice(length: buffer.readableBytes)!
                return (emit(line), true)
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

    /// Drops what is left of the current line, up to and including its `\n`.
    package func skipRestOfLine() async throws {
        while true {
            if let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                buffer.moveReaderIndex(to: newline + 1)
                lineCount += 1
                return
            }
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            guard !isFinished, let chunk = try await nextChunk() else {
                isFinished = true
                lineCount += 1
                return
            }
            buffer = chunk
        }
    }
}

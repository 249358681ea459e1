import NIOCore

/// Finds the JSON documents among the lines of `kubectl cluster-info dump`'s stdout form, outside log blocks.
///
/// A document starts at a line whose first non-blank byte is `{` or `[` and ends where its brackets balance (strings
/// and escapes understood), whether it spans one line or thousands. Lines outside any document that are not blank are
/// counted as noise, not guessed at.
package struct JSONDocumentSplitter {
    private var document = ByteBuffer()
    private var brackets = JSONBrackets()
    private let maxDocumentBytes: Int
    /// Non-blank lines seen outside any document.
    package private(set) var noiseLines = 0

    /// Splits documents of at most `maxDocumentBytes` bytes.
    package init(maxDocumentBytes: Int) { self.maxDocumentBytes = maxDocumentBytes }

    /// True while a document is open.
    package var isInDocument: Bool { brackets.depth > 0 }

    /// Adds one line; returns a document when this line completes one.
    package mutating func feed(_ line: ByteBuffer) throws -> ByteBuffer? {
        let bytes = line.readableBytesView
        if brackets.depth == 0 {
            guard let first = bytes.first(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) else {
                return nil
            }
            guard first == UInt8(ascii: "{") || first == UInt8(ascii: "[") else {
                noiseLines += 1
                return nil
            }
            document.clear()
        }
        guard document.readableBytes + bytes.count + 1 <= maxDocumentBytes else {
            throw ArchiveError(
                .limitExceeded, "A JSON document of the dump is larger than the limit of \(maxDocumentBytes) bytes.")
        }
        for byte in bytes { _ = brackets.feed(byte) }
        var line = line
        document.writeBuffer(&line)
        document.writeInteger(UInt8(ascii: "\n"))
        if brackets.depth <= 0 {
            brackets = JSONBrackets()
            return document
        }
        return nil
    }

    /// Throws when input ended inside a document.
    package func finish() throws {
        guard brackets.depth == 0 else {
            throw ArchiveError(.corrupt, "The dump ends in the middle of a JSON document: it is truncated.")
        }
    }
}

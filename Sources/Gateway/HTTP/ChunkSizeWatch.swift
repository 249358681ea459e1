import Foundation

/// Follows the HTTP/1.1 request framing of one connection's bytes just far enough to read the size each chunk
/// declares, so that a chunk promising more than `limit` bytes is refused on sight rather than waited on.
///
/// NIO's decoder parses chunk sizes but passes none on, hence this small, conservative reader of its own: request
/// heads (`Transfer-Encoding` and `Content-Length` only), bodies of a known length (skipped), chunk-size lines and
/// trailers. Anything it does not follow (a head line past 64 KiB, a `Content-Length` that is not a number, a chunk
/// size that is not hex) turns it off for the connection: the decoder answers those, and the watch never refuses
/// what it did not read.
struct ChunkSizeWatch {
    /// What the bytes fed so far hold.
    enum Verdict: Equatable {
        case fine
        /// A chunk declares `size` bytes (at least: the reading stops once past the limit); the bytes of this feed
        /// before `offset` end inside its size line at the latest (the digit that passed the limit is at `offset`).
        case tooLarge(size: UInt64, offset: Int)
    }

    private enum State {
        /// Reading a line of a request head (the request line included).
        case head
        /// Skipping a body of known length.
        case body(remaining: UInt64)
        /// Reading a chunk's size, `digits` hex digits so far.
        case size(UInt64, digits: Int)
        /// The rest of a chunk-size line (extensions, CR) up to its LF, then a chunk of that size.
        case sizeLineEnd(UInt64)
        /// Skipping a chunk's data.
        case chunk(remaining: UInt64)
        /// The CRLF after a chunk's data.
        case chunkEnd
        /// Reading trailer lines up to the empty one that ends the request.
        case trailers
        /// Not following this connection.
        case off
    }

    private static let maxLineBytes = 64 << 10

    private let limit: UInt64
    private var state = State.head
    private var line: [UInt8] = []
    private var headLines = 0
    private var isChunked = false
    private var contentLength: UInt64 = 0

    /// A watch refusing chunks of more than `limit` bytes.
    init(limit: UInt64) { self.limit = limit }

    /// Reads `bytes`, the next the connection received.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        var index = 0
        while index < bytes.count {
            switch state {
            case .off:
                return .fine
            case .body(let remaining), .chunk(let remaining):
                let skipped = min(remaining, UInt64(bytes.count - index))
                index += Int(skipped)
                if case .body = state {
                    state = skipped == remaining ? .head : .body(remaining: remaining - skipped)
                } else {
                    state = skipped == remaining ? .chunkEnd : .chunk(remaining: remaining - skipped)
                }
            case .head, .trailers:
                // A line at a time: the bytes up to its LF are taken at once.
                let end = bytes[index...].firstIndex(of: UInt8(ascii: "\n"))
                line.append(contentsOf: bytes[index..<(end ?? bytes.count)])
                if line.count > Self.maxLineBytes {
                    state = .off
                } else if let end {
                    endLine()
                }
                index = (end ?? bytes.count - 1) + 1
            case .size, .sizeLineEnd, .chunkEnd:
                if let size = read(bytes[index]) { return .tooLarge(size: size, offset: index) }
                index += 1
            }
        }
        return .fine
    }

    /// Ends a line of a head or of the trailers, held in `line` without its LF.
    private mutating func endLine() {
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        if case .head = state { endHeadLine() } else if line.isEmpty { state = .head }
        line.removeAll(keepingCapacity: true)
    }

    /// One byte of a chunk-size line or of the CRLF after a chunk; the size read so far once it is past the limit.
    private mutating func read(_ byte: UInt8) -> UInt64? {
        switch state {
        case .size(let value, let digits):
            if let digit = Self.hexValue(byte) {
                let size = value << 4 | UInt64(digit)
                guard size <= limit else { return size }
                state = .size(size, digits: digits + 1)
            } else if digits > 0, byte == UInt8(ascii: "\n") {
                endSizeLine(value)
            } else if digits > 0, Self.endsSizeDigits(byte) {
                state = .sizeLineEnd(value)
            } else {
                state = .off
            }
        case .sizeLineEnd(let value):
            if byte == UInt8(ascii: "\n") { endSizeLine(value) }
        case .chunkEnd:
            if byte == UInt8(ascii: "\n") { state = .size(0, digits: 0) }
        case .head, .trailers, .body, .chunk, .off:
            break
        }
        return nil
    }

    private mutating func endHeadLine() {
        guard line.isEmpty else {
            headLines += 1
            if headLines > 1 { header(line) }
            return
        }
        guard headLines > 0 else { return }  // blank lines before a request line are allowed
        if isChunked {
            state = .size(0, digits: 0)
        } else if contentLength > 0 {
            state = .body(remaining: contentLength)
        }
        headLines = 0
        isChunked = false
        contentLength = 0
    }

    private mutating func header(_ line: [UInt8]) {
        if let value = Self.value(of: Self.transferEncoding, in: line) {
            // The last coding frames the body; RFC 9112 §6.3: it overrides any Content-Length.
            let codings = value.lowercased().split(separator: ",")
            isChunked = codings.last?.trimmingCharacters(in: .whitespaces) == "chunked"
        } else if let value = Self.value(of: Self.contentLength, in: line) {
            guard let length = UInt64(value) else {
                state = .off
                return
            }
            contentLength = length
        }
    }

    private static let transferEncoding = Array("transfer-encoding:".utf8)
    private static let contentLength = Array("content-length:".utf8)

    /// The trimmed value of `line` when it is the header `name` (lowercase, with its colon), in any case.
    private static func value(of name: [UInt8], in line: [UInt8]) -> String? {
        guard line.count >= name.count,
            zip(name, line).allSatisfy({ $0 == $1 | (($1 >= 0x41 && $1 <= 0x5A) ? 0x20 : 0) })
        else { return nil }
        return String(decoding: line[name.count...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    private mutating func endSizeLine(_ size: UInt64) {
        state = size == 0 ? .trailers : .chunk(remaining: size)
    }

    /// What may follow a chunk size's digits on its line: an extension, whitespace before one, the CR.
    private static func endsSizeDigits(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
            || byte == UInt8(ascii: "\r")
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

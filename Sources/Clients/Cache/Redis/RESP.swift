import NIOCore

/// A value of the Redis serialization protocol, RESP2 (what every Redis since 2.0 speaks by default).
///
/// No Swift Redis client is reachable from this machine's package mirror, so the gateway has this small one:
/// ``RESPParser`` and ``RESPValue/encodeCommand(_:into:)`` here, ``RedisConnection`` on SwiftNIO, ``RedisCache`` on top.
package enum RESPValue: Sendable, Equatable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR message`
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$3\r\nfoo`, or `$-1` (nil)
    case bulkString(ByteBuffer?)
    /// `*2\r\n...`, or `*-1` (nil)
    case array([RESPValue]?)

    /// Writes a command (an array of bulk strings) to `buffer`.
    package static func encodeCommand(_ arguments: [ByteBuffer], into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.readableBytes)\r\n")
            buffer.writeImmutableBuffer(argument)
            buffer.writeString("\r\n")
        }
    }

    /// Writes this value in RESP form (servers write replies; tests use it to make them).
    package func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .simpleString(let text): buffer.writeString("+\(text)\r\n")
        case .error(let text): buffer.writeString("-\(text)\r\n")
        case .integer(let value): buffer.writeString(":\(value)\r\n")
        case .bulkString(nil): buffer.writeString("$-1\r\n")
        case .bulkString(let bytes?):
            buffer.writeString("$\(bytes.readableBytes)\r\n")
            buffer.writeImmutableBuffer(bytes)
            buffer.writeString("\r\n")
        case .array(nil): buffer.writeString("*-1\r\n")
        case .array(let values?):
            buffer.writeString("*\(values.count)\r\n")
            for value in values { value.encode(into: &buffer) }
        }
    }
}

/// Why bytes from a Redis server could not be parsed: the connection cannot be trusted after this.
package struct RESPError: Error, Sendable, Equatable, CustomStringConvertible {
    package let message: String
    package var description: String { "RESP: \(message)" }
}

/// An incremental RESP2 parser: feed it what arrived; it returns whole values and leaves partial ones unread.
///
/// Bounded against hostile or broken peers: a bulk string of at most `maxBulkBytes`, an array of at most
/// `maxElements`, nesting at most `maxDepth`, a line (type byte to CRLF) of at most 64 KiB.
package struct RESPParser: Sendable {
    package var maxBulkBytes = 512 << 20
    package var maxElements = 1 << 20
    package var maxDepth = 32

    package init() {}

    /// The next whole value at the start of `buffer`, consuming its bytes; nil (consuming nothing) when more bytes
    /// are needed.
    package func parse(_ buffer: inout ByteBuffer) throws(RESPError) -> RESPValue? {
        var cursor = buffer
        guard let value = try parseValue(&cursor, depth: 0) else { return nil }
        buffer = cursor
        return value
    }

    private func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws(RESPError) -> RESPValue? {
        guard depth <= maxDepth else { throw RESPError(message: "nesting deeper than \(maxDepth)") }
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        guard let line = try readLine(&buffer) else { return nil }
        let text = String(decoding: line.readableBytesView.dropFirst(), as: UTF8.self)
        switch type {
        case UInt8(ascii: "+"): return .simpleString(text)
        case UInt8(ascii: "-"): return .error(text)
        case UInt8(ascii: ":"):
            guard let value = Int64(text) else { throw RESPError(message: "bad integer '\(text.prefix(40))'") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(text), length >= -1 else { throw RESPError(message: "bad bulk length") }
            if length == -1 { return .bulkString(nil) }
            guard length <= maxBulkBytes else { throw RESPError(message: "bulk string over \(maxBulkBytes) bytes") }
            guard buffer.readableBytes >= length + 2 else { return nil }
            let bytes = buffer.readSlice(length: length)!
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                throw RESPError(message: "bulk string not followed by CRLF")
            }
            return .bulkString(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int(text), count >= -1 else { throw RESPError(message: "bad array length") }
            if count == -1 { return .array(nil) }
            guard count <= maxElements else { throw RESPError(message: "array over \(maxElements) elements") }
            var values: [RESPValue] = []
            values.reserveCapacity(min(count, 1024))
            for _ in 0..<count {
                guard let value = try parseValue(&buffer, depth: depth + 1) else { return nil }
                values.append(value)
            }
            return .array(values)
        default:
            throw RESPError(message: "unknown type byte \(type)")
        }
    }

    /// The line at the reader index up to CRLF (CRLF consumed, not returned); nil when no CRLF has arrived yet.
    private func readLine(_ buffer: inout ByteBuffer) throws(RESPError) -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let cr = view.prefix(64 * 1024 + 1).firstIndex(of: UInt8(ascii: "\r")) else {
            if view.count > 64 * 1024 { throw RESPError(message: "line over 64 KiB") }
            return nil
        }
        let length = cr - view.startIndex
        guard buffer.readableBytes >= length + 2 else { return nil }
        guard buffer.getInteger(at: cr + 1, as: UInt8.self) == UInt8(ascii: "\n") else {
            throw RESPError(message: "CR not followed by LF")
        }
        let line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }
}

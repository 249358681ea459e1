import NIOCore

/// One row of a ClickHouse result: each column's text by name, `nil` for NULL.
package struct ClickHouseRow: Sendable {
    fileprivate let columns: [String: Int]
    fileprivate let values: [String?]

    /// The column's value as text; nil when it is NULL or there is no such column.
    package subscript(_ name: String) -> String? {
        columns[name].flatMap { values[$0] }
    }

    /// The column's value as an integer; nil when it is NULL or not an integer.
    package func int(_ name: String) -> Int? { self[name].flatMap { Int($0) } }

    /// The column's value as a 64-bit integer; nil when it is NULL or not an integer.
    package func int64(_ name: String) -> Int64? { self[name].flatMap { Int64($0) } }
}

/// Decodes ClickHouse's `TabSeparatedWithNames` output as it arrives, chunk by chunk.
///
/// The format is byte-exact (unlike a JSON round trip through Foundation, which may fold characters such as U+FEFF):
/// columns separated by tabs, rows ended by newlines, and in values only `\b \f \r \n \t \0 \' \\` escapes (plus `\a`,
/// `\v` and `\e` read for safety) and `\N` for NULL. A row of the wrong width is what ClickHouse writes when a query
/// fails after the answer has started; it is reported with the server's message.
package struct TabSeparatedDecoder {
    private var pending = ByteBuffer()
    private var columns: [String: Int]?
    private var width = 0

    package init() {}

    /// The whole rows in `chunk` (with what earlier chunks left unfinished).
    package mutating func feed(_ chunk: ByteBuffer) throws -> [ClickHouseRow] {
        pending.writeImmutableBuffer(chunk)
        var rows: [ClickHouseRow] = []
        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending.readSlice(length: newline - pending.readerIndex)!
            pending.moveReaderIndex(forwardBy: 1)
            let values = try Self.fields(line)
            if let columns {
                guard values.count == width else { throw Self.malformed(line) }
                rows.append(ClickHouseRow(columns: columns, values: values))
            } else {
                let names = values.compactMap { $0 }
                guard names.count == values.count else { throw Self.malformed(line) }
                columns = Dictionary(names.enumerated().map { ($1, $0) }) { first, _ in first }
                width = names.count
            }
        }
        pending.discardReadBytes()
        return rows
    }

    /// Throws when the answer ended inside a row.
    package func finish() throws {
        if pending.readableBytes > 0 { throw Self.malformed(pending) }
    }

    private static func malformed(_ line: ByteBuffer) -> ClickHouseError {
        let text = String(buffer: line)
        // "Code: 241, e.displayText() = DB::Exception: ..." when the query failed mid-answer.
        return text.hasPrefix("Code:")
            ? ClickHouseError(code: .server, message: String(text.prefix(300)))
            : ClickHouseError(code: .malformedAnswer, message: "a result row has the wrong number of columns")
    }

    private static func fields(_ line: ByteBuffer) throws -> [String?] {
        var fields: [String?] = []
        var field: [UInt8] = []
        var escaped = false
        var isNull = false
        for byte in line.readableBytesView {
            if escaped {
                escaped = false
                switch byte {
                case UInt8(ascii: "b"): field.append(0x08)
                case UInt8(ascii: "f"): field.append(0x0C)
                case UInt8(ascii: "r"): field.append(0x0D)
                case UInt8(ascii: "n"): field.append(0x0A)
                case UInt8(ascii: "t"): field.append(0x09)
                case UInt8(ascii: "0"): field.append(0x00)
                case UInt8(ascii: "a"): field.append(0x07)
                case UInt8(ascii: "v"): field.append(0x0B)
                case UInt8(ascii: "e"): field.append(0x1B)
                case UInt8(ascii: "N") where field.isEmpty: isNull = true
                default: field.append(byte)
                }
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\t") {
                fields.append(isNull ? nil : String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
                isNull = false
            } else {
                field.append(byte)
            }
        }
        fields.append(isNull ? nil : String(decoding: field, as: UTF8.self))
        return fields
    }
}

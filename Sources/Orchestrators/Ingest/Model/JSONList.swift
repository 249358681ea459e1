import Foundation

/// The shape of a Kubernetes List document without decoding its items: the List's `kind` and `apiVersion`, and the
/// byte range of each element of `items`, so every item's original bytes can be stored as they were.
///
/// A document with no `items` but a `metadata` object is one item itself. A scanner over bytes, not a parser: items
/// are only delimited here (strings and escapes understood) and decoded one by one later.
package struct JSONList: Sendable {
    /// The List's `kind`, for example `PodList`.
    package var kind: String?
    /// The List's `apiVersion`.
    package var apiVersion: String?
    /// Where each item lies in the document.
    package var items: [Range<Int>]

    /// Scans `bytes`, a JSON object.
    package init(scanning bytes: [UInt8]) throws {
        var scanner = Scanner(bytes: bytes)
        scanner.skipWhitespace()
        guard scanner.consume(UInt8(ascii: "{")) else { throw Scanner.malformed("it is not a JSON object") }
        var hasMetadata = false
        var items: [Range<Int>]?
        while true {
            scanner.skipWhitespace()
            if scanner.consume(UInt8(ascii: "}")) { break }
            let key = try scanner.string()
            scanner.skipWhitespace()
            guard scanner.consume(UInt8(ascii: ":")) else { throw Scanner.malformed("a ':' is missing") }
            scanner.skipWhitespace()
            switch key {
            case "kind": kind = try scanner.optionalString()
            case "apiVersion": apiVersion = try scanner.optionalString()
            case "items": items = try scanner.arrayElements()
            case "metadata":
                hasMetadata = true
                _ = try scanner.value()
            default: _ = try scanner.value()
            }
            scanner.skipWhitespace()
            if scanner.consume(UInt8(ascii: ",")) { continue }
            guard scanner.consume(UInt8(ascii: "}")) else { throw Scanner.malformed("a ',' or '}' is missing") }
            break
        }
        self.items = items ?? (hasMetadata ? [0..<bytes.count] : [])
    }

    /// Delimits JSON values in bytes.
    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        static func malformed(_ what: String) -> ArchiveError {
            ArchiveError(.corrupt, "A JSON document of the snapshot is malformed: \(what).")
        }

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string value, decoded; nil for `null`.
        mutating func optionalString() throws -> String? {
            if index < bytes.count, bytes[index] == UInt8(ascii: "n") {
                _ = try value()
                return nil
            }
            return try string()
        }

        mutating func string() throws -> String {
            let range = try value()
            guard bytes[range.lowerBound] == UInt8(ascii: "\"") else { throw Self.malformed("a string is expected") }
            guard let text = try? JSONDecoder().decode(String.self, from: Data(bytes[range])) else {
                throw Self.malformed("a string is invalid")
            }
            return text
        }

        /// The ranges of an array's elements; `null` is an empty array.
        mutating func arrayElements() throws -> [Range<Int>] {
            if index < bytes.count, bytes[index] == UInt8(ascii: "n") {
                _ = try value()
                return []
            }
            guard consume(UInt8(ascii: "[")) else { throw Self.malformed("'items' is not an array") }
            var elements: [Range<Int>] = []
            skipWhitespace()
            if consume(UInt8(ascii: "]")) { return elements }
            while true {
                skipWhitespace()
                elements.append(try value())
                skipWhitespace()
                if consume(UInt8(ascii: ",")) { continue }
                guard consume(UInt8(ascii: "]")) else { throw Self.malformed("a ',' or ']' is missing in 'items'") }
                return elements
            }
        }

        /// Skips one value and returns its range.
        mutating func value() throws -> Range<Int> {
            let start = index
            guard index < bytes.count else { throw Self.malformed("it ends early") }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard index < bytes.count else { throw Self.malformed("a string is not closed") }
                index += 1
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var brackets = JSONBrackets()
                while index < bytes.count {
                    let isClosed = brackets.feed(bytes[index])
                    index += 1
                    if isClosed { return start..<index }
                }
                throw Self.malformed("an object or array is not closed")
            default:
                while index < bytes.count,
                    ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D]
                        .contains(bytes[index])
                {
                    index += 1
                }
                guard index > start else { throw Self.malformed("a value is missing") }
            }
            return start..<index
        }
    }
}

import Foundation

/// Finds the items of a Kubernetes List document as its bytes stream in, holding at most one item and the List's
/// envelope (everything but its items: `kind`, `apiVersion`, `metadata`) in memory: a List of a million items costs
/// one item's memory, not the document's.
///
/// A scanner over bytes, not a parser: values are only delimited here (strings and escapes understood) and decoded
/// one by one later. A document with no `items` but a `metadata` object is one item itself: its envelope.
/// Written here (no streaming JSON library is reachable); the tests hold every item it delimits to a full parse.
package struct JSONListStream {
    /// The List's `kind`, once its value has been read.
    package private(set) var kind: String?
    /// The List's `apiVersion`, once its value has been read.
    package private(set) var apiVersion: String?
    /// True once the document's closing `}` was read.
    package var isComplete: Bool { state == .end }

    private enum State: Equatable {
        /// Before the opening `{`.
        case start
        /// After `{`: a key or `}`.
        case beforeFirstKey
        /// After `,`: a key.
        case beforeKey
        case key
        /// After a key: `:`.
        case afterKey
        case beforeValue
        case value
        /// After a value: `,` or `}`.
        case afterValue
        /// After `items: [`: an element or `]`.
        case beforeFirstElement
        /// After `,` in items: an element.
        case beforeElement
        case element
        /// After an element: `,` or `]`.
        case afterElement
        /// After the closing `}`: only white space.
        case end
    }

    private let maxItemBytes: Int
    private var state = State.start
    private var key: [UInt8] = []
    private var isEscapedInKey = false
    /// The value or element being read.
    private var current: [UInt8] = []
    /// Brackets, strings and escapes inside the current value or element.
    private var brackets = JSONBrackets()
    private var isScalar = false
    private var envelope: [UInt8] = []
    private var hasItems = false
    private var hasMetadata = false

    /// A scanner refusing any item (and an envelope) larger than `maxItemBytes`.
    package init(maxItemBytes: Int) { self.maxItemBytes = maxItemBytes }

    /// Reads `bytes`, appending each item it completes to `items`. Throws ``ArchiveError`` for a document that is not
    /// a JSON object, is malformed, or holds an item larger than the limit.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer, into items: inout [[UInt8]]) throws {
        var index = 0
        while index < bytes.count {
            if state == .value || state == .element {
                index = try scanValue(bytes, from: index, into: &items)
            } else {
                try step(bytes[index])
                index += 1
            }
        }
    }

    /// Ends the document: appends the envelope to `items` when the document is a single object, and throws when it
    /// was not whole.
    package mutating func finish(into items: inout [[UInt8]]) throws {
        guard state == .end else { throw Self.malformed(state == .start ? "it is empty" : "it ends early") }
        if !hasItems && hasMetadata { items.append(envelope) }
        envelope = []
    }

    // MARK: Structure

    private mutating func step(_ byte: UInt8) throws {
        let isSpace = byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
        switch state {
        case .start:
            if isSpace { return }
            guard byte == UInt8(ascii: "{") else { throw Self.malformed("it is not a JSON object") }
            try keep(byte)
            state = .beforeFirstKey
        case .beforeFirstKey, .beforeKey:
            if isSpace { return }
            if byte == UInt8(ascii: "}"), state == .beforeFirstKey {
                try keep(byte)
                state = .end
                return
            }
            guard byte == UInt8(ascii: "\"") else { throw Self.malformed("a key is expected") }
            try keep(byte)
            key.removeAll(keepingCapacity: true)
            isEscapedInKey = false
            state = .key
        case .key:
            try keep(byte)
            if isEscapedInKey {
                isEscapedInKey = false
            } else if byte == UInt8(ascii: "\\") {
                isEscapedInKey = true
            } else if byte == UInt8(ascii: "\"") {
                state = .afterKey
                return
            }
            key.append(byte)
        case .afterKey:
            if isSpace { return }
            guard byte == UInt8(ascii: ":") else { throw Self.malformed("a ':' is missing") }
            try keep(byte)
            state = .beforeValue
        case .beforeValue:
            if isSpace { return }
            if key == Self.itemsKey {
                hasItems = true
                if byte == UInt8(ascii: "[") {
                    try keep(byte)
                    state = .beforeFirstElement
                    return
                }
                guard byte == UInt8(ascii: "n") else { throw Self.malformed("'items' is not an array") }
            }
            if key == Self.metadataKey { hasMetadata = true }
            startValue(byte, as: .value)
            try add(byte)
        case .afterValue:
            if isSpace { return }
            try keep(byte)
            if byte == UInt8(ascii: ",") {
                state = .beforeKey
            } else if byte == UInt8(ascii: "}") {
                state = .end
            } else {
                throw Self.malformed("a ',' or '}' is missing")
            }
        case .beforeFirstElement, .beforeElement:
            if isSpace { return }
            if byte == UInt8(ascii: "]"), state == .beforeFirstElement {
                try keep(byte)
                state = .afterValue
                return
            }
            startValue(byte, as: .element)
            try add(byte)
        case .afterElement:
            if isSpace { return }
            if byte == UInt8(ascii: ",") {
                state = .beforeElement
            } else if byte == UInt8(ascii: "]") {
                try keep(byte)
                state = .afterValue
            } else {
                throw Self.malformed("a ',' or ']' is missing in 'items'")
            }
        case .end:
            guard isSpace else { throw Self.malformed("something follows its end") }
        case .value, .element:
            break
        }
    }

    // MARK: Values and elements

    private mutating func startValue(_ byte: UInt8, as kind: State) {
        current.removeAll(keepingCapacity: true)
        brackets = JSONBrackets()
        isScalar = byte != UInt8(ascii: "{") && byte != UInt8(ascii: "[") && byte != UInt8(ascii: "\"")
        state = kind
    }

    /// Reads bytes of the current value or element from `start`; returns where it stopped.
    private mutating func scanValue(
        _ bytes: UnsafeRawBufferPointer, from start: Int, into items: inout [[UInt8]]
    ) throws -> Int {
        var index = start
        while index < bytes.count, state == .value || state == .element {
            let byte = bytes[index]
            if isScalar, Self.endsScalar(byte) {
                try end(into: &items)
                return index  // the byte after a scalar belongs to the structure
            }
            index += 1
            if try add(byte) { try end(into: &items) }
        }
        return index
    }

    /// Adds `byte` to the current value; true when it closes it.
    @discardableResult
    private mutating func add(_ byte: UInt8) throws -> Bool {
        if state == .value { try keep(byte) }
        current.append(byte)
        guard current.count <= maxItemBytes else {
            throw ArchiveError(
                .limitExceeded, "An item of a JSON document of the snapshot is larger than \(maxItemBytes) bytes.")
        }
        if isScalar { return false }
        let closed = brackets.feed(byte)
        return closed || (current.first == UInt8(ascii: "\"") && current.count > 1 && !brackets.isInString)
    }

    private mutating func end(into items: inout [[UInt8]]) throws {
        if state == .element {
            items.append(current)
            current = []
            state = .afterElement
            return
        }
        if key == Self.kindKey { kind = try Self.string(current) }
        if key == Self.apiVersionKey { apiVersion = try Self.string(current) }
        if key == Self.itemsKey, !current.elementsEqual("null".utf8) { throw Self.malformed("'items' is not an array") }
        state = .afterValue
    }

    /// Adds `byte` to the envelope: the document without its items.
    private mutating func keep(_ byte: UInt8) throws {
        envelope.append(byte)
        guard envelope.count <= maxItemBytes else {
            throw ArchiveError(
                .limitExceeded,
                "A JSON document of the snapshot holds more than \(maxItemBytes) bytes outside its items.")
        }
    }

    private static func endsScalar(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") || byte == 0x20
            || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    /// A string value decoded; nil for `null`.
    private static func string(_ value: [UInt8]) throws -> String? {
        if value.elementsEqual("null".utf8) { return nil }
        guard value.first == UInt8(ascii: "\""), let text = try? JSONDecoder().decode(String.self, from: Data(value))
        else { throw malformed("a string is expected") }
        return text
    }

    static func malformed(_ what: String) -> ArchiveError {
        ArchiveError(.corrupt, "A JSON document of the snapshot is malformed: \(what).")
    }

    private static let itemsKey = Array("items".utf8)
    private static let metadataKey = Array("metadata".utf8)
    private static let kindKey = Array("kind".utf8)
    private static let apiVersionKey = Array("apiVersion".utf8)
}

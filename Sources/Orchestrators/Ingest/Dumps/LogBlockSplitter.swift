import NIOCore

/// Finds the log blocks of `kubectl cluster-info dump` in a sequence of lines:
/// `==== START logs for container C of pod NS/POD ====`, the log's lines, `==== END logs for container C of pod NS/POD ====`.
///
/// Real dumps glue the END marker to the last log line when the log does not end with a newline; that line's text
/// before the marker is still a log line. A START inside an open block closes it, as does the end of input.
package struct LogBlockSplitter {
    /// The container a block belongs to.
    package struct Block: Sendable, Equatable {
        /// The pod's namespace.
        package var namespace: String
        package var pod: String
        package var container: String
    }

    /// What a line turned out to be.
    package enum Event: Equatable {
        /// A block starts.
        case start(Block)
        /// A log line of the open block.
        case line(ByteBuffer)
        /// The open block ends.
        case end
        /// A line outside any block (the caller decides: JSON in the stdout form, noise elsewhere).
        case outside(ByteBuffer)
    }

    /// The open block, if any.
    package private(set) var current: Block? {
        didSet { endMarker = current.map(Self.endMarker) ?? [] }
    }
    /// The END marker of the open block, made once per block (this is checked against every line).
    private var endMarker: [UInt8] = []

    /// Starts outside any block.
    package init() {}

    private static let startPrefix = Array("==== START logs for container ".utf8)
    private static let endPrefix = Array("==== END logs for container ".utf8)
    private static let suffix = Array(" ====".utf8)

    /// Classifies one line; may produce two events (the end of an open block, then a new start).
    package mutating func feed(_ line: ByteBuffer, into events: inout [Event]) {
        let bytes = line.readableBytesView
        if bytes.starts(with: Self.startPrefix), let block = Self.parseMarker(bytes.dropFirst(Self.startPrefix.count)) {
            if current != nil { events.append(.end) }
            current = block
            events.append(.start(block))
            return
        }
        guard current != nil else {
            events.append(.outside(line))
            return
        }
        if let markerStart = endMarkerStart(in: bytes) {
            if markerStart > bytes.startIndex {
                events.append(.line(line.getSlice(at: line.readerIndex, length: markerStart - bytes.startIndex)!))
            }
            current = nil
            events.append(.end)
            return
        }
        events.append(.line(line))
    }

    /// Closes an open block at the end of input.
    package mutating func finish(into events: inout [Event]) {
        if current != nil {
            current = nil
            events.append(.end)
        }
    }

    /// `C of pod NS/POD ====` → the block.
    private static func parseMarker(_ rest: ByteBufferView.SubSequence) -> Block? {
        guard rest.count > suffix.count, rest.suffix(suffix.count).elementsEqual(suffix) else { return nil }
        let text = String(decoding: rest.dropLast(suffix.count), as: UTF8.self)
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[1] == "of", parts[2] == "pod",
            let slash = parts[3].firstIndex(of: "/"), !parts[0].isEmpty
        else { return nil }
        let namespace = parts[3][..<slash]
        let pod = parts[3][parts[3].index(after: slash)...]
        guard !namespace.isEmpty, !pod.isEmpty else { return nil }
        return Block(namespace: String(namespace), pod: String(pod), container: String(parts[0]))
    }

    /// The END marker of `block`.
    private static func endMarker(_ block: Block) -> [UInt8] {
        endPrefix + Array("\(block.container) of pod \(block.namespace)/\(block.pod)".utf8) + suffix
    }

    /// Where the open block's END marker begins in `bytes` when the line ends with it.
    private func endMarkerStart(in bytes: ByteBufferView) -> ByteBufferView.Index? {
        guard bytes.count >= endMarker.count, bytes.last == UInt8(ascii: "="),
            bytes.suffix(endMarker.count).elementsEqual(endMarker)
        else { return nil }
        return bytes.endIndex - endMarker.count
    }
}

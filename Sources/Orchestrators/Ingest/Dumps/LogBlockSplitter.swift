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
        /// The pod.
        package var pod: String
        /// The container.
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
    package private(set) var current: Block?

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
        guard let open = current else {
            events.append(.outside(line))
            return
        }
        if let markerStart = Self.endMarkerStart(in: bytes, for: open) {
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

    /// Where the END marker of `block` begins in `bytes` when the line ends with it.
    private static func endMarkerStart(in bytes: ByteBufferView, for block: Block) -> ByteBufferView.Index? {
        let marker = endPrefix + Array("\(block.container) of pod \(block.namespace)/\(block.pod)".utf8) + suffix
        guard bytes.count >= marker.count, bytes.suffix(marker.count).elementsEqual(marker) else { return nil }
        return bytes.endIndex - marker.count
    }
}

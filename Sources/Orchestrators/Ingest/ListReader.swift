import Foundation
import NIOCore

/// One List document read as it streams in: its items delimited by a ``JSONListStream``, extracted and handed to
/// the sink a batch at a time (once `itemsPerBatch` items or `batchBytes` bytes are pending, checked every 16 KiB of
/// input), so the memory an ingest holds never grows with the number or the size of the items of one document.
///
/// Items are extracted with what is known of the List when their batch goes: a List whose `kind` follows its items
/// (no writer of Kubernetes JSON does that) keeps them until it is known, up to `maxPendingBytes`.
struct ListReader {
    let source: String
    let namespace: String?
    let fileKind: String?
    let limits: SnapshotReader.Limits
    private var stream: JSONListStream
    private var pending: [[UInt8]] = []
    private var pendingBytes = 0
    private var hasSentABatch = false
    private static let sliceBytes = 16 << 10

    init(source: String, namespace: String?, fileKind: String?, limits: SnapshotReader.Limits) {
        self.source = source
        self.namespace = namespace
        self.fileKind = fileKind
        self.limits = limits
        self.stream = JSONListStream(maxItemBytes: limits.maxItemBytes)
    }

    /// True once the document's closing bracket was read.
    var isComplete: Bool { stream.isComplete }

    mutating func feed<Sink: SnapshotSink>(_ bytes: ByteBuffer, into sink: inout Sink) async throws {
        var rest = bytes
        while let slice = rest.readSlice(length: min(Self.sliceBytes, rest.readableBytes)), slice.readableBytes > 0 {
            let before = pending.count
            do {
                try slice.withUnsafeReadableBytes { try stream.feed($0, into: &pending) }
            } catch let error as ArchiveError {
                throw error.located(in: source)
            }
            pendingBytes += pending[before...].reduce(0) { $0 + $1.count }
            let isKnown = stream.kind != nil || fileKind != nil
            if pending.count >= limits.itemsPerBatch || pendingBytes >= limits.batchBytes,
                isKnown || pendingBytes >= limits.maxPendingBytes
            {
                try await flush(into: &sink)
            }
        }
    }

    /// Ends the document: throws when it was not whole, hands the last batch over (an empty one only when the
    /// document held no item at all: the sink still learns of the List and its namespace).
    mutating func finish<Sink: SnapshotSink>(into sink: inout Sink) async throws {
        do { try stream.finish(into: &pending) } catch let error as ArchiveError { throw error.located(in: source) }
        if !pending.isEmpty || !hasSentABatch { try await flush(into: &sink) }
    }

    private mutating func flush<Sink: SnapshotSink>(into sink: inout Sink) async throws {
        let context = ObjectExtractor.Context(
            listKind: stream.kind, listAPIVersion: stream.apiVersion, fileKind: fileKind, fileNamespace: namespace)
        var items: [ParsedList.Item] = []
        items.reserveCapacity(pending.count)
        var skipped = 0
        for raw in pending {
            guard let extracted = try? ObjectExtractor.extract(Data(raw), context: context) else {
                skipped += 1
                continue
            }
            items.append(.init(extracted: extracted, raw: ByteBuffer(bytes: raw)))
        }
        pending.removeAll()
        pendingBytes = 0
        hasSentABatch = true
        try await sink.list(ParsedList(source: source, namespace: namespace, items: items, skippedItems: skipped))
    }
}

extension ArchiveError {
    /// The error with the document it is about named.
    fileprivate func located(in source: String) -> ArchiveError {
        var error = self
        let sentence = reason.hasSuffix(".") ? String(reason.dropLast()) : reason
        error.reason = sentence + " (in \(source))."
        return error
    }
}

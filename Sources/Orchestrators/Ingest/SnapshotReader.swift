import AsyncAlgorithms
import Foundation
import KubinModel
import NIOCore
import Synchronization

/// Reads a stored snapshot of any accepted form and reports its lists and logs to a ``SnapshotSink``, streaming:
/// memory is bounded by one item (`maxItemBytes`), a batch of items (`batchBytes`), one line and a batch of log lines,
/// whatever the size of a document or the number of its items.
///
/// gzip: a tar (cluster-info dump directory or support bundle, any leading folder) or one stdout-form file;
/// zip: the same layouts; json: the stdout form. Refused or broken archives throw ``ArchiveError``.
package struct SnapshotReader {
    /// Every bound the reader applies.
    package struct Limits: Sendable {
        /// Against decompression bombs.
        package var expansion = ExpansionLimits()
        /// Of tar archives.
        package var tar = TarReader.Limits()
        /// Of zip archives.
        package var zip = ZipReader.Limits()
        /// The largest item of a List (and the most a List holds besides its items). Kubernetes itself keeps objects
        /// under 1.5 MiB (etcd's request limit).
        package var maxItemBytes = 16 << 20
        /// Items of a List handed to the sink at once (one manifest object, one index transaction).
        package var itemsPerBatch = 1000
        /// The most bytes of items handed to the sink at once, however few they are.
        package var batchBytes = 4 << 20
        /// The most bytes of items a List whose `kind` is not known yet is kept waiting for it.
        package var maxPendingBytes = 16 << 20
        /// The longest log line kept whole.
        package var maxLineBytes = 64 << 10
        /// Log lines handed to the sink at once.
        package var logBatchSize = 2000

        package init() {}
    }

    private let limits: Limits
    private let referenceMicros: Int64

    /// A reader for a snapshot taken at `referenceMicros` (klog lines carry no year).
    package init(limits: Limits = Limits(), referenceMicros: Int64) {
        self.limits = limits
        self.referenceMicros = referenceMicros
    }

    /// Reads the archive `source`, of the container `format`, into `sink`.
    package func read<Sink: SnapshotSink>(
        _ format: SnapshotFormat, from source: some RandomAccessBytes, into sink: inout Sink
    ) async throws {
        let progress = Progress()
        let source = CountingSource(base: source, progress: progress)
        // Whether anything of a snapshot was found: a List, a log block or a container log.
        var isSnapshot = false
        switch format {
        case .zip:
            try await ZipReader.read(source, limits: limits.zip, expansion: limits.expansion) { entry, body in
                if try await readEntry(entry, body: body, into: &sink) { isSnapshot = true }
                try await sink.progress(bytesRead: progress.bytes, entriesRead: progress.countEntry())
            }
        case .gzip:
            // Decompression runs in its own task, a chunk ahead of the parsing: the two use both cores.
            let decompressed = Gunzip(RangedChunks(source: source), limits: limits.expansion, chunkSize: 256 * 1024)
            try await withPrefetching(decompressed) { chunks in
                let stream = ByteStream(chunks)
                guard let head = try await stream.peek(count: 512) else { return }
                if Self.isTarHeader(head) {
                    try await TarReader.read(stream, limits: limits.tar) { entry, body in
                        if try await readEntry(entry, body: body, into: &sink) { isSnapshot = true }
                        try await sink.progress(bytesRead: progress.bytes, entriesRead: progress.countEntry())
                    }
                } else {
                    let lines = LineReader(maxLineBytes: limits.maxLineBytes) {
                        try await stream.readChunk(upTo: 256 * 1024)
                    }
                    isSnapshot = try await readStdoutForm(lines, into: &sink, progress: progress)
                }
            }
        case .json:
            var chunks = RangedChunks(source: source).makeAsyncIterator()
            let lines = LineReader(maxLineBytes: limits.maxLineBytes) { try await chunks.next() }
            isSnapshot = try await readStdoutForm(lines, into: &sink, progress: progress)
        }
        guard isSnapshot else {
            throw ArchiveError(
                .corrupt,
                "The archive holds no Kubernetes List and no log: it is not a kubectl cluster-info dump (a directory "
                    + "or its stdout form) or a support bundle.")
        }
        try await sink.progress(bytesRead: progress.bytes, entriesRead: progress.entries)
    }

    /// One file of a tar or zip archive; false when it is not part of a snapshot (and was skipped).
    private func readEntry<Sink: SnapshotSink>(
        _ entry: ArchiveEntry, body: some ArchiveEntryBody, into sink: inout Sink
    ) async throws -> Bool {
        guard entry.kind == .file else { return false }
        switch DumpFile.classify(entry.path) {
        case .clusterList(let kind):
            try await readList(body, source: entry.path, namespace: nil, kind: kind, into: &sink)
        case .namespacedList(let namespace, let kind):
            try await readList(body, source: entry.path, namespace: namespace, kind: kind, into: &sink)
        case .podLogBlocks:
            let lines = LineReader(body, maxLineBytes: limits.maxLineBytes)
            var splitter = LogBlockSplitter()
            var blocks = BlockLogs(reader: self)
            var events: [LogBlockSplitter.Event] = []
            while let line = try await lines.next() {
                events.removeAll(keepingCapacity: true)
                splitter.feed(line, into: &events)
                try await blocks.handle(events, into: &sink)
            }
            events.removeAll()
            splitter.finish(into: &events)
            try await blocks.handle(events, into: &sink)
        case .containerLog(let namespace, let pod, let container, let isPrevious):
            let key = LogStreamKey(namespace: namespace, pod: pod, container: container, isPrevious: isPrevious)
            var log = ContainerLog(key: key, reader: self)
            let lines = LineReader(body, maxLineBytes: limits.maxLineBytes)
            while let line = try await lines.next() { try await log.feed(line, into: &sink) }
            try await log.finish(into: &sink)
        case .ignored:
            return false
        }
        return true
    }

    /// One List file of an archive, streamed through a ``ListReader``.
    private func readList<Sink: SnapshotSink>(
        _ body: some ArchiveEntryBody, source: String, namespace: String?, kind: String?, into sink: inout Sink
    ) async throws {
        var list = ListReader(source: source, namespace: namespace, fileKind: kind, limits: limits)
        while let chunk = try await body.next(upTo: 256 * 1024) { try await list.feed(chunk, into: &sink) }
        try await list.finish(into: &sink)
    }

    /// The stdout form: JSON documents and log blocks, line by line. False when it held neither.
    ///
    /// A document starts at a line (outside log blocks) whose first non-blank byte is `{` or `[`, and streams
    /// through a ``ListReader`` until its brackets balance, however many lines it spans and however long they are
    /// (a compact document is one long line). Other lines outside documents and blocks are noise, not guessed at.
    private func readStdoutForm<Sink: SnapshotSink>(
        _ lines: LineReader, into sink: inout Sink, progress: Progress
    )
        async throws -> Bool
    {
        var isSnapshot = false
        var splitter = LogBlockSplitter()
        var document: ListReader?
        var blocks = BlockLogs(reader: self)
        var events: [LogBlockSplitter.Event] = []
        while let (piece, endsLine) = try await lines.nextPiece() {
            events.removeAll(keepingCapacity: true)
            if document != nil {
                events.append(.outside(piece))
            } else {
                splitter.feed(piece, into: &events)
            }
            for event in events {
                guard case .outside(let text) = event else { continue }
                if document == nil {
                    guard let first = text.readableBytesView.first(where: { $0 != 0x20 && $0 != 0x09 }),
                        first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
                    else { continue }
                    isSnapshot = true
                    document = ListReader(
                        source: "stdout document \(progress.countEntry())", namespace: nil, fileKind: nil,
                        limits: limits)
                }
                try await document?.feed(text, into: &sink)
                if endsLine { try await document?.feed(Self.newline, into: &sink) }
                if document?.isComplete == true {
                    try await document?.finish(into: &sink)
                    document = nil
                    try await sink.progress(bytesRead: progress.bytes, entriesRead: progress.entries)
                }
            }
            // A long line outside a document (a log line, noise) is cut at the limit: the rest is dropped.
            if !endsLine, document == nil { try await lines.skipRestOfLine() }
            if events.contains(where: { if case .start = $0 { true } else { false } }) { isSnapshot = true }
            try await blocks.handle(events, into: &sink)
        }
        events.removeAll()
        splitter.finish(into: &events)
        try await blocks.handle(events, into: &sink)
        guard document == nil else {
            throw ArchiveError(.corrupt, "The dump ends in the middle of a JSON document: it is truncated.")
        }
        return isSnapshot
    }

    private static let newline = ByteBuffer(string: "\n")

    /// True for a block that starts a tar archive: a ustar magic, or (old tars have none) a checksum that matches.
    static func isTarHeader(_ block: ByteBuffer) -> Bool {
        let header = Array(block.readableBytesView)
        guard header.count == 512, !header.allSatisfy({ $0 == 0 }) else { return false }
        // A ustar magic says tar whatever the checksum: the tar reader then says what is wrong with the header.
        if header[257..<262].elementsEqual("ustar".utf8) { return true }
        let field = header[148..<156].filter { (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }
        guard let stored = Int(String(decoding: field, as: UTF8.self), radix: 8) else { return false }
        let sum = header.enumerated().reduce(0) { $0 + Int((148..<156).contains($1.offset) ? 32 : $1.element) }
        return stored == sum
    }

    /// The log of one container, fed line by line: numbered, timestamped, CRI-joined, batched; a log that starts
    /// with `Request log error:` is a fetch error instead.
    struct ContainerLog {
        let key: LogStreamKey
        let reader: SnapshotReader
        var assembler: LogLineAssembler
        var batch: [LogLine] = []
        var fetchError: String?
        var isFirstLine = true

        init(key: LogStreamKey, reader: SnapshotReader) {
            self.key = key
            self.reader = reader
            self.assembler = LogLineAssembler(referenceMicros: reader.referenceMicros)
        }

        mutating func feed<Sink: SnapshotSink>(_ line: ByteBuffer, into sink: inout Sink) async throws {
            if isFirstLine {
                isFirstLine = false
                if line.readableBytesView.starts(with: Array("Request log error:".utf8)) {
                    fetchError = String(buffer: line)
                    return
                }
            }
            guard fetchError == nil else { return }
            assembler.feed(line, into: &batch)
            if batch.count >= reader.limits.logBatchSize {
                try await sink.logLines(batch, of: key)
                batch.removeAll(keepingCapacity: true)
            }
        }

        mutating func finish<Sink: SnapshotSink>(into sink: inout Sink) async throws {
            if let fetchError {
                try await sink.logFetchError(fetchError, of: key)
                return
            }
            assembler.finish(into: &batch)
            if !batch.isEmpty { try await sink.logLines(batch, of: key) }
        }
    }

    /// The container logs of START/END blocks, one open at a time.
    struct BlockLogs {
        let reader: SnapshotReader
        var open: ContainerLog?

        mutating func handle<Sink: SnapshotSink>(_ events: [LogBlockSplitter.Event], into sink: inout Sink) async throws
        {
            for event in events {
                switch event {
                case .start(let block):
                    let key = LogStreamKey(
                        namespace: block.namespace, pod: block.pod, container: block.container, isPrevious: false)
                    open = ContainerLog(key: key, reader: reader)
                case .line(let line):
                    try await open?.feed(line, into: &sink)
                case .end:
                    try await open?.finish(into: &sink)
                    open = nil
                case .outside:
                    break
                }
            }
        }
    }
}

/// Iterates `base` in a child task that stays one element ahead of `body`, so producing (decompressing) and consuming
/// (parsing) overlap. An error of `base` reaches `body` at the element where it happened; when `body` returns or
/// throws, the producer is cancelled.
func withPrefetching<Base: AsyncSequence & Sendable, Result>(
    _ base: Base, _ body: (AsyncThrowingChannel<ByteBuffer, any Error>.Iterator) async throws -> Result
) async throws -> Result where Base.Element == ByteBuffer {
    let channel = AsyncThrowingChannel<ByteBuffer, any Error>()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            do {
                for try await chunk in base {
                    await channel.send(chunk)
                    try Task.checkCancellation()  // the consumer is gone: stop decompressing
                }
                channel.finish()
            } catch {
                channel.fail(error)
            }
        }
        defer { group.cancelAll() }
        return try await body(channel.makeAsyncIterator())
    }
}

/// How far a read has come: source bytes read and archive entries seen.
final class Progress: Sendable {
    private let counters = Mutex((bytes: Int64(0), entries: 0))

    /// Source bytes read so far.
    var bytes: Int64 { counters.withLock { $0.bytes } }
    /// Entries (or stdout documents) seen so far.
    var entries: Int { counters.withLock { $0.entries } }

    func addBytes(_ count: Int) { counters.withLock { $0.bytes += Int64(count) } }

    /// Counts one more entry and returns the new count.
    func countEntry() -> Int {
        counters.withLock {
            $0.entries += 1; return $0.entries
        }
    }
}

/// A source that counts the bytes read from it.
struct CountingSource<Base: RandomAccessBytes>: RandomAccessBytes {
    let base: Base
    let progress: Progress

    var size: Int64 { base.size }

    func read(_ range: Range<Int64>) async throws -> ByteBuffer {
        let bytes = try await base.read(range)
        progress.addBytes(bytes.readableBytes)
        return bytes
    }
}

/// The bytes of a source in order, read in ranges of `chunkSize`.
struct RangedChunks<Source: RandomAccessBytes>: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let source: Source
    var chunkSize: Int64 = 1 << 20

    func makeAsyncIterator() -> Iterator { Iterator(source: source, chunkSize: chunkSize) }

    struct Iterator: AsyncIteratorProtocol {
        let source: Source
        let chunkSize: Int64
        var offset: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            guard offset < source.size else { return nil }
            let end = Swift.min(source.size, offset + chunkSize)
            let chunk = try await source.read(offset..<end)
            offset = end
            return chunk
        }
    }
}

import AsyncAlgorithms
import Clients
import Foundation
import KubinModel
import NIOCore

/// Writes what ``SnapshotReader`` finds into the stores: each batch of a List's items as one manifest object in
/// storage (one JSON item per line) with their index rows (and namespaces) in metadata, events in analytics, and log
/// lines to `logs`, which a ``LogWriter`` drains into analytics concurrently (so reading and writing use both cores).
/// What it keeps between batches grows with the container logs, never with the items: which pods are orphans (seen
/// only through their logs) is asked of the index at the end.
///
/// Everything it writes is keyed by the snapshot and by the archive's order (the n-th batch is manifest object `n`),
/// so a re-ingest after ``IndexStore/clearIndex(_:)`` and ``AnalyticsStore/deleteSnapshot(_:)`` writes the same
/// rows and objects again, never duplicates.
struct IngestSink: SnapshotSink {
    let snapshot: SnapshotID
    let metadata: any IndexStore
    let objects: any ObjectStore
    let analytics: any AnalyticsStore
    /// Log lines and fetch errors, in order, for the ``LogWriter``.
    let logs: AsyncChannel<LogWrite>
    /// Called with progress; throws to stop the ingest (a lost lease, a shutdown).
    let onProgress: (IngestProgress) async throws -> Void

    private(set) var counts = SnapshotCounts()
    private var logContainers: [PodKey: Set<String>] = [:]
    private var streams: [LogStreamKey: Int] = [:]  // lines stored so far per container log
    private var part = 0

    init(
        snapshot: SnapshotID, metadata: any IndexStore, objects: any ObjectStore, analytics: any AnalyticsStore,
        logs: AsyncChannel<LogWrite>, onProgress: @escaping (IngestProgress) async throws -> Void
    ) {
        self.snapshot = snapshot
        self.metadata = metadata
        self.objects = objects
        self.analytics = analytics
        self.logs = logs
        self.onProgress = onProgress
    }

    mutating func list(_ list: ParsedList) async throws {
        counts.skippedItems += list.skippedItems
        var namespaces: Set<String> = list.namespace.map { [$0] } ?? []
        guard !list.items.isEmpty else {
            if !namespaces.isEmpty {
                try await metadata.insertIndex(IndexBatch(namespaces: namespaces.sorted()), of: snapshot)
            }
            return
        }
        part += 1
        let key = ObjectKey.manifests(of: snapshot, part: part)
        var manifests = ByteBuffer()
        manifests.reserveCapacity(list.items.reduce(0) { $0 + $1.raw.readableBytes + 1 })
        var batch = IndexBatch()
        var events: [EventRecord] = []
        for item in list.items {
            let offset = Int64(manifests.writerIndex)
            var raw = item.raw
            manifests.writeBuffer(&raw)
            manifests.writeInteger(UInt8(ascii: "\n"))
            let record = item.extracted.resource
            batch.resources.append(
                IndexedResource(
                    record: record,
                    location: ManifestLocation(
                        objectKey: key.rawValue, offset: offset, length: Int64(item.raw.readableBytes))))
            if let namespace = record.namespace { namespaces.insert(namespace) }
            if record.kind == "Namespace" { namespaces.insert(record.name) }
            if let pod = item.extracted.pod {
                batch.pods.append(IndexedPod(record: pod, labels: record.labels, isOrphan: false))
            }
            if let event = item.extracted.event { events.append(event) }
        }
        _ = try await objects.put(key, body: OneBuffer(manifests))
        batch.namespaces = namespaces.sorted()
        try await metadata.insertIndex(batch, of: snapshot)
        try await analytics.appendEvents(events, firstSequence: counts.events, snapshot: snapshot)
        counts.events += events.count
    }

    mutating func logLines(_ lines: [LogLine], of stream: LogStreamKey) async throws {
        // A container log seen twice (a dump with a repeated block) continues its numbering.
        let before = noteStream(stream)
        var lines = lines
        if before > 0 {
            for index in lines.indices { lines[index].number += before }
        }
        await logs.send(.lines(lines, stream))
        try Task.checkCancellation()  // a send returns without sending when the writer has gone
        streams[stream] = before + lines.count
        counts.logLines += lines.count
    }

    mutating func logFetchError(_ message: String, of stream: LogStreamKey) async throws {
        _ = noteStream(stream)
        await logs.send(.fetchError(message, stream))
        try Task.checkCancellation()
        counts.logFetchErrors += 1
    }

    mutating func progress(bytesRead: Int64, entriesRead: Int) async throws {
        try await onProgress(IngestProgress(bytesRead: bytesRead, entriesRead: entriesRead))
    }

    /// Writes what is known only at the end: namespaces, and pods seen only through their logs. Returns the counts for
    /// the snapshot.
    mutating func finish() async throws -> SnapshotCounts {
        let listed = try await metadata.listedPods(of: snapshot, among: Array(logContainers.keys))
        var orphans: [IndexedPod] = []
        for (pod, containers) in logContainers where !listed.contains(pod) {
            let containers = containers.sorted().map {
                ContainerRecord(name: $0, role: .main, image: nil, state: "unknown")
            }
            orphans.append(
                IndexedPod(
                    record: PodRecord(
                        namespace: pod.namespace, name: pod.name, phase: "Unknown", node: nil, containers: containers),
                    labels: [:], isOrphan: true))
        }
        let namespaces = Set(logContainers.keys.map(\.namespace))
        try await metadata.insertIndex(
            IndexBatch(namespaces: namespaces.sorted(), pods: orphans.sorted { $0.record.name < $1.record.name }),
            of: snapshot)
        counts.logStreams = streams.count
        return counts
    }

    /// Records the stream and its pod; returns the lines stored for it so far.
    private mutating func noteStream(_ stream: LogStreamKey) -> Int {
        logContainers[PodKey(namespace: stream.namespace, name: stream.pod), default: []].insert(stream.container)
        if let count = streams[stream] { return count }
        streams[stream] = 0
        return 0
    }
}

/// A write for the ``LogWriter``.
enum LogWrite: Sendable {
    /// Lines of one container log.
    case lines([LogLine], LogStreamKey)
    /// A container log that could not be fetched.
    case fetchError(String, LogStreamKey)
}

/// Drains the log writes of one ingest into analytics, in order, while the reader goes on reading. The channel holds
/// one batch at a time and the writer gathers at most `linesPerWrite` lines (of any number of container logs) into
/// one write, so memory stays bounded, a slow store slows the reader down, and thousands of short container logs do
/// not cost a transaction each.
struct LogWriter {
    let snapshot: SnapshotID
    let analytics: any AnalyticsStore
    let logs: AsyncChannel<LogWrite>
    let linesPerWrite: Int

    /// Writes until the channel is finished.
    func run() async throws {
        var pending: [LogBatch] = []
        var pendingLines = 0
        func write() async throws {
            guard !pending.isEmpty else { return }
            try await analytics.appendLogLines(pending, snapshot: snapshot)
            pending.removeAll(keepingCapacity: true)
            pendingLines = 0
        }
        for await entry in logs {
            switch entry {
            case .lines(let lines, let stream):
                pending.append(LogBatch(stream: stream, lines: lines))
                pendingLines += lines.count
                if pendingLines >= linesPerWrite { try await write() }
            case .fetchError(let message, let stream):
                try await write()
                try await analytics.recordLogFetchError(message, of: stream, snapshot: snapshot)
            }
        }
        try Task.checkCancellation()  // the channel also ends when the ingest is cancelled: nothing more to write
        try await write()
    }
}

/// An async sequence of one buffer: a body for ``ObjectStore/put(_:body:)`` of bytes already in memory.
struct OneBuffer: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffer: ByteBuffer

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    func makeAsyncIterator() -> Iterator { Iterator(buffer: buffer) }

    struct Iterator: AsyncIteratorProtocol {
        var buffer: ByteBuffer?

        mutating func next() async throws -> ByteBuffer? {
            defer { buffer = nil }
            return buffer
        }
    }
}

/// A stored object read by ranges: the archive as ``SnapshotReader`` reads it.
struct StoredObjectBytes: RandomAccessBytes {
    let objects: any ObjectStore
    let key: ObjectKey
    let size: Int64

    func read(_ range: Range<Int64>) async throws -> ByteBuffer {
        var collected = ByteBuffer()
        try await objects.read(key, range: range) { chunk in
            var chunk = chunk
            collected.writeBuffer(&chunk)
        }
        return collected
    }
}

import Clients
import Crypto
import Foundation
import KubinModel
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TestSupport

/// Real embedded stores in a temporary directory.
struct Stores {
    let directory: String
    let metadata: SQLiteMetadataStore
    let objects: LocalObjectStore
    let analytics: SQLiteAnalyticsStore

    static func open() async throws -> Stores {
        let directory = NSTemporaryDirectory() + "kubin-orchestrator-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return Stores(
            directory: directory,
            metadata: try await SQLiteMetadataStore.open(
                path: directory + "/metadata.sqlite", logger: Logger(label: "t")),
            objects: try await LocalObjectStore.open(root: directory + "/storage", threadPool: .singleton),
            analytics: try await SQLiteAnalyticsStore.open(
                path: directory + "/analytics.sqlite", logger: Logger(label: "t")))
    }

    /// Runs `body` with fresh stores, closed and removed whether it returns or throws.
    static func with<Result>(_ body: (Stores) async throws -> Result) async throws -> Result {
        let stores = try await open()
        return try await closing(stores.close) { try await body(stores) }
    }

    func close() async throws {
        try await metadata.close()
        try await analytics.close()
        try FileManager.default.removeItem(atPath: directory)
    }

    /// Files under the storage directory (objects and staging), relative to it.
    var storedFiles: [String] { regularFiles(under: directory + "/storage") }

    var snapshotCount: Int {
        get async throws { try await metadata.listSnapshots(SnapshotQuery(limit: 500)).items.count }
    }
}

/// An upload body: yields `chunks`; optionally announces its first read on `started`, waits for `gate` after the
/// first chunk, and fails at the end.
struct TestBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    var chunks: [ByteBuffer]
    var started: Gate?
    var gate: Gate?
    var failure: (any Error & Sendable)?
    var probe: ReadProbe?

    init(
        _ bytes: [UInt8], chunkSize: Int = 1000, started: Gate? = nil, gate: Gate? = nil,
        failure: (any Error & Sendable)? = nil, probe: ReadProbe? = nil
    ) {
        self.chunks = stride(from: 0, to: bytes.count, by: chunkSize).map {
            ByteBuffer(bytes: bytes[$0..<Swift.min($0 + chunkSize, bytes.count)])
        }
        self.started = started
        self.gate = gate
        self.failure = failure
        self.probe = probe
    }

    func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    struct Iterator: AsyncIteratorProtocol {
        let body: TestBody
        var index = 0

        mutating func next() async throws -> ByteBuffer? {
            body.probe?.wasRead.store(true, ordering: .relaxed)
            if index == 0 { body.started?.open() }
            if index == 1, let gate = body.gate { await gate.wait() }
            guard index < body.chunks.count else {
                if let failure = body.failure { throw failure }
                return nil
            }
            defer { index += 1 }
            return body.chunks[index]
        }
    }
}

/// Records whether a body was read at all.
final class ReadProbe: Sendable {
    let wasRead = Atomic(false)
    var isRead: Bool { wasRead.load(ordering: .relaxed) }
}

/// Turns injected failures on and off.
final class FailureSwitch: Sendable {
    let isOn = Atomic(false)
    func set(_ on: Bool) { isOn.store(on, ordering: .relaxed) }
}

/// A test double of the snapshot store: every call goes to `base` unless the double overrides it.
protocol ForwardingSnapshotStore: SnapshotStore {
    var base: any SnapshotStore { get }
}

extension ForwardingSnapshotStore {
    func insertSnapshot(_ snapshot: Snapshot, idempotencyKey: IdempotencyRecord?) async throws {
        try await base.insertSnapshot(snapshot, idempotencyKey: idempotencyKey)
    }
    func snapshot(_ id: SnapshotID) async throws -> Snapshot? { try await base.snapshot(id) }
    func listSnapshots(_ query: SnapshotQuery) async throws -> Page<Snapshot> { try await base.listSnapshots(query) }
    func deleteSnapshot(_ id: SnapshotID) async throws -> Bool { try await base.deleteSnapshot(id) }
    func idempotencyRecord(forKey key: String) async throws -> IdempotencyRecord? {
        try await base.idempotencyRecord(forKey: key)
    }
}

/// A test double of the index: every call goes to `base` unless the double overrides it.
protocol ForwardingIndexStore: IndexStore {
    var index: any IndexStore { get }
}

extension ForwardingIndexStore {
    func clearIndex(_ id: SnapshotID) async throws { try await index.clearIndex(id) }
    func insertIndex(_ batch: IndexBatch, of id: SnapshotID) async throws { try await index.insertIndex(batch, of: id) }
    func namespaceSummaries(of id: SnapshotID) async throws -> [NamespaceSummary] {
        try await index.namespaceSummaries(of: id)
    }
    func resources(of id: SnapshotID, _ query: ResourceQuery) async throws -> Page<IndexedResource> {
        try await index.resources(of: id, query)
    }
    func resource(of id: SnapshotID, kind: String, namespace: String?, name: String) async throws -> IndexedResource? {
        try await index.resource(of: id, kind: kind, namespace: namespace, name: name)
    }
    func pods(of id: SnapshotID, _ query: PodQuery) async throws -> Page<IndexedPod> {
        try await index.pods(of: id, query)
    }
    func podsWithMostRestarts(of id: SnapshotID, limit: Int) async throws -> [IndexedPod] {
        try await index.podsWithMostRestarts(of: id, limit: limit)
    }
    func listedPods(of id: SnapshotID, among pods: [PodKey]) async throws -> Set<PodKey> {
        try await index.listedPods(of: id, among: pods)
    }
}

/// A snapshot store whose inserts fail while its switch is on; everything else goes to the real one.
final class FailingSnapshotStore: ForwardingSnapshotStore {
    struct InjectedFailure: Error {}
    let base: any SnapshotStore
    let failInserts: FailureSwitch

    init(base: any SnapshotStore, failInserts: FailureSwitch) {
        self.base = base
        self.failInserts = failInserts
    }

    func insertSnapshot(_ snapshot: Snapshot, idempotencyKey: IdempotencyRecord?) async throws {
        if failInserts.isOn.load(ordering: .relaxed) { throw InjectedFailure() }
        try await base.insertSnapshot(snapshot, idempotencyKey: idempotencyKey)
    }
}

/// Holds inserts at a gate: `entered` opens when an insert arrives, which then waits for `release`.
final class InsertGate: Sendable {
    let entered = Gate()
    let release = Gate()
}

/// A snapshot store whose inserts wait at a gate, then fail if their task was cancelled meanwhile.
final class BlockingSnapshotStore: ForwardingSnapshotStore {
    let base: any SnapshotStore
    let gate: InsertGate

    init(base: any SnapshotStore, gate: InsertGate) {
        self.base = base
        self.gate = gate
    }

    func insertSnapshot(_ snapshot: Snapshot, idempotencyKey: IdempotencyRecord?) async throws {
        gate.entered.open()
        await gate.release.wait()
        try Task.checkCancellation()
        try await base.insertSnapshot(snapshot, idempotencyKey: idempotencyKey)
    }
}

/// A test double that forwards every analytics call to a real store except the ones it overrides.
protocol ForwardingAnalyticsStore: AnalyticsStore {
    var base: any AnalyticsStore { get }
}

extension ForwardingAnalyticsStore {
    func appendLogLines(_ batches: [LogBatch], snapshot: SnapshotID) async throws {
        try await base.appendLogLines(batches, snapshot: snapshot)
    }
    func recordLogFetchError(_ message: String, of stream: LogStreamKey, snapshot: SnapshotID) async throws {
        try await base.recordLogFetchError(message, of: stream, snapshot: snapshot)
    }
    func appendEvents(_ events: [EventRecord], firstSequence: Int, snapshot: SnapshotID) async throws {
        try await base.appendEvents(events, firstSequence: firstSequence, snapshot: snapshot)
    }
    func flush() async throws { try await base.flush() }
    func deleteSnapshot(_ snapshot: SnapshotID) async throws { try await base.deleteSnapshot(snapshot) }
    func logLines(of snapshot: SnapshotID, _ query: LogQuery) async throws -> Page<LogEntry> {
        try await base.logLines(of: snapshot, query)
    }
    func events(of snapshot: SnapshotID, _ query: EventQuery) async throws -> Page<EventRecord> {
        try await base.events(of: snapshot, query)
    }
    func podLogStats(of snapshot: SnapshotID, pods: [PodKey]) async throws -> [PodKey: PodLogStats] {
        try await base.podLogStats(of: snapshot, pods: pods)
    }
    func namespaceActivity(of snapshot: SnapshotID) async throws -> [String: NamespaceActivity] {
        try await base.namespaceActivity(of: snapshot)
    }
    func checkHealth() async throws { try await base.checkHealth() }
}

/// A test double that forwards every object-store call to a real store except the ones it overrides.
protocol ForwardingObjectStore: ObjectStore {
    var base: any ObjectStore { get }
}

extension ForwardingObjectStore {
    func put(_ key: ObjectKey, body: some AsyncSequence<ByteBuffer, any Error>) async throws -> ObjectInfo {
        try await base.put(key, body: body)
    }
    func info(_ key: ObjectKey) async throws -> ObjectInfo? { try await base.info(key) }
    func read(_ key: ObjectKey, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void) async throws {
        try await base.read(key, range: range, into: consume)
    }
    func delete(_ key: ObjectKey) async throws { try await base.delete(key) }
    func deleteAll(under prefix: ObjectKey) async throws { try await base.deleteAll(under: prefix) }
    func checkHealth() async throws { try await base.checkHealth() }
}

import Clients
import Foundation
import KubinModel
import KubinSupport
import NIOCore
import Synchronization

/// The metadata store with every call behind its ``DependencyGuard``. Reads are tried again after a failure, and so
/// are the writes idempotent by construction (renewing or releasing a lease, clearing an index); inserts, claims and
/// the writes that answer whether they changed something are not (a repeat after a lost reply would answer wrongly).
package struct GuardedMetadataStore: MetadataStore {
    private let base: any MetadataStore
    private let guarded: DependencyGuard

    package init(_ base: any MetadataStore, guard guarded: DependencyGuard) {
        self.base = base
        self.guarded = guarded
    }

    package func checkHealth() async throws { try await guarded.run { try await base.checkHealth() } }

    package func insertSnapshot(_ snapshot: Snapshot, idempotencyKey: IdempotencyRecord?) async throws {
        try await guarded.run { try await base.insertSnapshot(snapshot, idempotencyKey: idempotencyKey) }
    }

    package func snapshot(_ id: SnapshotID) async throws -> Snapshot? {
        try await guarded.runRepeatable { try await base.snapshot(id) }
    }

    package func listSnapshots(_ query: SnapshotQuery) async throws -> Page<Snapshot> {
        try await guarded.runRepeatable { try await base.listSnapshots(query) }
    }

    package func deleteSnapshot(_ id: SnapshotID) async throws -> Bool {
        try await guarded.run { try await base.deleteSnapshot(id) }
    }

    package func idempotencyRecord(forKey key: String) async throws -> IdempotencyRecord? {
        try await guarded.runRepeatable { try await base.idempotencyRecord(forKey: key) }
    }

    package func insertAPIKey(_ key: APIKey) async throws { try await guarded.run { try await base.insertAPIKey(key) } }

    package func apiKey(id: String) async throws -> APIKey? {
        try await guarded.runRepeatable { try await base.apiKey(id: id) }
    }

    package func listAPIKeys(tenant: TenantID?) async throws -> [APIKey] {
        try await guarded.runRepeatable { try await base.listAPIKeys(tenant: tenant) }
    }

    package func revokeAPIKey(id: String, at date: Date) async throws -> Bool {
        try await guarded.run { try await base.revokeAPIKey(id: id, at: date) }
    }

    package func claimIngestJob(worker: String, now: Date, leaseUntil: Date) async throws -> IngestJob? {
        try await guarded.run { try await base.claimIngestJob(worker: worker, now: now, leaseUntil: leaseUntil) }
    }

    package func renewIngestLease(
        _ id: SnapshotID, worker: String, until: Date, progress: IngestProgress
    ) async throws -> Bool {
        try await guarded.runRepeatable {
            try await base.renewIngestLease(id, worker: worker, until: until, progress: progress)
        }
    }

    package func releaseIngestJob(_ id: SnapshotID, worker: String) async throws {
        try await guarded.runRepeatable { try await base.releaseIngestJob(id, worker: worker) }
    }

    package func completeIngest(_ id: SnapshotID, worker: String, counts: SnapshotCounts, at: Date) async throws -> Bool
    {
        try await guarded.run { try await base.completeIngest(id, worker: worker, counts: counts, at: at) }
    }

    package func failIngest(_ id: SnapshotID, worker: String, reason: String, at: Date) async throws -> Bool {
        try await guarded.run { try await base.failIngest(id, worker: worker, reason: reason, at: at) }
    }

    package func clearIndex(_ id: SnapshotID) async throws {
        try await guarded.runRepeatable { try await base.clearIndex(id) }
    }

    package func insertIndex(_ batch: IndexBatch, of id: SnapshotID) async throws {
        try await guarded.run { try await base.insertIndex(batch, of: id) }
    }

    package func namespaceSummaries(of id: SnapshotID) async throws -> [NamespaceSummary] {
        try await guarded.runRepeatable { try await base.namespaceSummaries(of: id) }
    }

    package func resources(of id: SnapshotID, _ query: ResourceQuery) async throws -> Page<IndexedResource> {
        try await guarded.runRepeatable { try await base.resources(of: id, query) }
    }

    package func resource(
        of id: SnapshotID, kind: String, namespace: String?, name: String
    ) async throws -> IndexedResource? {
        try await guarded.runRepeatable {
            try await base.resource(of: id, kind: kind, namespace: namespace, name: name)
        }
    }

    package func pods(of id: SnapshotID, _ query: PodQuery) async throws -> Page<IndexedPod> {
        try await guarded.runRepeatable { try await base.pods(of: id, query) }
    }

    package func listedPods(of id: SnapshotID, among pods: [PodKey]) async throws -> Set<PodKey> {
        try await guarded.runRepeatable { try await base.listedPods(of: id, among: pods) }
    }

    package func podsWithMostRestarts(of id: SnapshotID, limit: Int) async throws -> [IndexedPod] {
        try await guarded.runRepeatable { try await base.podsWithMostRestarts(of: id, limit: limit) }
    }
}

/// The object store with every call behind its ``DependencyGuard``. Reads and deletes are tried again after a
/// failure (a read only before its first byte reached the reader); a put is not (its body is not kept). A body that fails while it is stored, or a
/// reader that stops taking bytes, is the caller's doing: the store is not blamed for it.
package struct GuardedObjectStore: ObjectStore {
    private let base: any ObjectStore
    private let guarded: DependencyGuard

    package init(_ base: any ObjectStore, guard guarded: DependencyGuard) {
        self.base = base
        self.guarded = guarded
    }

    package func put(_ key: ObjectKey, body: some AsyncSequence<ByteBuffer, any Error>) async throws -> ObjectInfo {
        let observed = CallerFailures(body)
        return try await guarded.runStreaming(counting: { !observed.failed.isSet && DependencyGuard.isFailure($0) }) {
            try await base.put(key, body: observed)
        }
    }

    package func info(_ key: ObjectKey) async throws -> ObjectInfo? {
        try await guarded.runRepeatable { try await base.info(key) }
    }

    package func read(
        _ key: ObjectKey, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void
    ) async throws {
        var consumerFailed = false
        var hasConsumed = false
        // Tried again only while no byte has gone to the reader.
        try await guarded.runStreaming(
            retryable: { !hasConsumed }, counting: { !consumerFailed && DependencyGuard.isFailure($0) }
        ) {
            try await base.read(key, range: range) { buffer in
                hasConsumed = true
                do {
                    try await consume(buffer)
                } catch {
                    consumerFailed = true
                    throw error
                }
            }
        }
    }

    package func delete(_ key: ObjectKey) async throws {
        try await guarded.runRepeatable { try await base.delete(key) }
    }

    package func deleteAll(under prefix: ObjectKey) async throws {
        try await guarded.runRepeatable { try await base.deleteAll(under: prefix) }
    }

    package func checkHealth() async throws { try await guarded.run { try await base.checkHealth() } }
}

/// An upload's body that remembers whether it failed (the client's failure, not the store's).
private struct CallerFailures<Base: AsyncSequence<ByteBuffer, any Error>>: AsyncSequence {
    typealias Element = ByteBuffer
    let base: Base
    let failed = Flag()

    init(_ base: Base) { self.base = base }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let failed: Flag

        mutating func next() async throws -> ByteBuffer? {
            do {
                return try await base.next()
            } catch {
                failed.set()
                throw error
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), failed: failed) }
}

/// A flag raised once, from any task.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// The analytics store with every call behind its ``DependencyGuard``. Reads and deleting a snapshot's rows are tried
/// again after a failure; appends are not (a repeat could store rows twice).
package struct GuardedAnalyticsStore: AnalyticsStore {
    private let base: any AnalyticsStore
    private let guarded: DependencyGuard

    package init(_ base: any AnalyticsStore, guard guarded: DependencyGuard) {
        self.base = base
        self.guarded = guarded
    }

    package func appendLogLines(_ batches: [LogBatch], snapshot: SnapshotID) async throws {
        try await guarded.run { try await base.appendLogLines(batches, snapshot: snapshot) }
    }

    package func recordLogFetchError(_ message: String, of stream: LogStreamKey, snapshot: SnapshotID) async throws {
        try await guarded.run { try await base.recordLogFetchError(message, of: stream, snapshot: snapshot) }
    }

    package func appendEvents(_ events: [EventRecord], firstSequence: Int, snapshot: SnapshotID) async throws {
        try await guarded.run { try await base.appendEvents(events, firstSequence: firstSequence, snapshot: snapshot) }
    }

    package func flush() async throws { try await guarded.run { try await base.flush() } }

    package func deleteSnapshot(_ snapshot: SnapshotID) async throws {
        try await guarded.runRepeatable { try await base.deleteSnapshot(snapshot) }
    }

    package func logLines(of snapshot: SnapshotID, _ query: LogQuery) async throws -> Page<LogEntry> {
        try await guarded.runRepeatable { try await base.logLines(of: snapshot, query) }
    }

    package func events(of snapshot: SnapshotID, _ query: EventQuery) async throws -> Page<EventRecord> {
        try await guarded.runRepeatable { try await base.events(of: snapshot, query) }
    }

    package func podLogStats(of snapshot: SnapshotID, pods: [PodKey]) async throws -> [PodKey: PodLogStats] {
        try await guarded.runRepeatable { try await base.podLogStats(of: snapshot, pods: pods) }
    }

    package func namespaceActivity(of snapshot: SnapshotID) async throws -> [String: NamespaceActivity] {
        try await guarded.runRepeatable { try await base.namespaceActivity(of: snapshot) }
    }

    package func checkHealth() async throws { try await guarded.run { try await base.checkHealth() } }
}

/// A shared cache (Redis) with every call behind its ``DependencyGuard``; every call but the health check may be tried
/// again.
package struct GuardedCache: Cache {
    private let base: any Cache
    private let guarded: DependencyGuard

    package init(_ base: any Cache, guard guarded: DependencyGuard) {
        self.base = base
        self.guarded = guarded
    }

    package func get(_ key: String) async throws -> ByteBuffer? {
        try await guarded.runRepeatable { try await base.get(key) }
    }

    package func set(_ key: String, value: ByteBuffer, timeToLive: Duration?) async throws {
        try await guarded.runRepeatable { try await base.set(key, value: value, timeToLive: timeToLive) }
    }

    package func delete(_ key: String) async throws { try await guarded.runRepeatable { try await base.delete(key) } }

    package func deleteAll(prefix: String) async throws {
        try await guarded.runRepeatable { try await base.deleteAll(prefix: prefix) }
    }

    package func checkHealth() async throws { try await guarded.run { try await base.checkHealth() } }
}

/// Shared rate-limit state (Redis, with the cache) behind the cache's ``DependencyGuard``.
package struct GuardedRateLimitStore: RateLimitStore {
    private let base: any RateLimitStore
    private let guarded: DependencyGuard

    package init(_ base: any RateLimitStore, guard guarded: DependencyGuard) {
        self.base = base
        self.guarded = guarded
    }

    package func acquire(_ key: String, rate: GCRA) async throws -> GCRA.Decision {
        try await guarded.run { try await base.acquire(key, rate: rate) }
    }
}

import Foundation
import KubinModel

/// Holds the snapshots, the idempotency keys of uploads, the ingest jobs, and each snapshot's index (namespaces,
/// resources with where their manifests are, pods).
///
/// Implementations: ``SQLiteMetadataStore`` (the embedded default); PostgreSQL comes later. Both pass one behaviour
/// suite.
package protocol MetadataStore: Sendable {
    /// Inserts `snapshot`, its ingest job, and `idempotencyKey` when given, in one transaction.
    /// Throws ``MetadataStoreError/idempotencyKeyExists`` when the key is already taken (nothing is inserted then).
    func insertSnapshot(_ snapshot: Snapshot, idempotencyKey: IdempotencyRecord?) async throws

    /// The snapshot `id`, or nil.
    func snapshot(_ id: SnapshotID) async throws -> Snapshot?

    /// One page of snapshots, newest first, filtered and continued as `query` says.
    func listSnapshots(_ query: SnapshotQuery) async throws -> Page<Snapshot>

    /// Deletes the snapshot `id` and every row that belongs to it. Returns false when there was no such snapshot.
    func deleteSnapshot(_ id: SnapshotID) async throws -> Bool

    /// The upload an idempotency key was first used for, or nil when the key is unused.
    func idempotencyRecord(forKey key: String) async throws -> IdempotencyRecord?

    /// Throws when the store cannot serve requests; used by `/readyz`.
    func checkHealth() async throws

    // MARK: API keys

    /// Stores a new API key (its id is unique: a clash throws).
    func insertAPIKey(_ key: APIKey) async throws

    /// The API key `id` (revoked ones included), or nil.
    func apiKey(id: String) async throws -> APIKey?

    /// Every API key of `tenant` (of all tenants when nil), oldest first.
    func listAPIKeys(tenant: TenantID?) async throws -> [APIKey]

    /// Marks the key `id` revoked at `at`; false when there is no such key or it was already revoked.
    func revokeAPIKey(id: String, at: Date) async throws -> Bool

    // MARK: Ingest jobs

    /// Claims the oldest job whose lease is free or expired at `now`: leases it to `worker` until `leaseUntil`,
    /// counts the attempt and marks the snapshot `processing`. Nil when no job is waiting.
    func claimIngestJob(worker: String, now: Date, leaseUntil: Date) async throws -> IngestJob?

    /// Extends `worker`'s lease on the job of `id` and records its progress. False when the lease was lost (expired
    /// and taken by another worker, or the snapshot deleted): the worker must stop.
    func renewIngestLease(_ id: SnapshotID, worker: String, until: Date, progress: IngestProgress) async throws -> Bool

    /// Gives up `worker`'s lease on the job of `id` so that any worker can claim it at once (a worker that stops).
    func releaseIngestJob(_ id: SnapshotID, worker: String) async throws

    /// Marks the snapshot `ready` with `counts` (the namespace, resource, pod and orphan pod counts are taken from the
    /// index itself) and removes its job, if `worker` still holds the lease. Returns false otherwise.
    func completeIngest(_ id: SnapshotID, worker: String, counts: SnapshotCounts, at: Date) async throws -> Bool

    /// Removes the index of `id` and marks the snapshot `failed` with `reason`, removing its job, if `worker` still
    /// holds the lease. Returns false otherwise.
    func failIngest(_ id: SnapshotID, worker: String, reason: String, at: Date) async throws -> Bool

    // MARK: The index

    /// Removes every index row of `id` (before a re-ingest).
    func clearIndex(_ id: SnapshotID) async throws

    /// Adds index rows of `id`; a row already present (same key) is replaced.
    func insertIndex(_ batch: IndexBatch, of id: SnapshotID) async throws

    /// Every namespace of `id` with its pod counts by phase and resource counts by kind, by name.
    func namespaceSummaries(of id: SnapshotID) async throws -> [NamespaceSummary]

    /// One page of resources of `id`.
    func resources(of id: SnapshotID, _ query: ResourceQuery) async throws -> Page<IndexedResource>

    /// One resource of `id` (a nil `namespace` for cluster-scoped objects), or nil.
    func resource(of id: SnapshotID, kind: String, namespace: String?, name: String) async throws -> IndexedResource?

    /// One page of pods of `id`.
    func pods(of id: SnapshotID, _ query: PodQuery) async throws -> Page<IndexedPod>

    /// The `limit` pods of `id` with the most restarts (ties by namespace and name), only pods that restarted.
    func podsWithMostRestarts(of id: SnapshotID, limit: Int) async throws -> [IndexedPod]
}

/// A claimed ingest job: the snapshot to index and which attempt this is (1 for the first).
package struct IngestJob: Sendable, Equatable {
    /// The snapshot, as it was when claimed.
    package var snapshot: Snapshot
    /// 1 for the first attempt; more after a worker died or lost its lease.
    package var attempt: Int

    /// Creates a job value.
    package init(snapshot: Snapshot, attempt: Int) {
        self.snapshot = snapshot
        self.attempt = attempt
    }
}

/// Index rows written together.
package struct IndexBatch: Sendable, Equatable {
    /// Namespaces.
    package var namespaces: [String] = []
    /// Resources.
    package var resources: [IndexedResource] = []
    /// Pods.
    package var pods: [IndexedPod] = []

    /// Creates a batch.
    package init(namespaces: [String] = [], resources: [IndexedResource] = [], pods: [IndexedPod] = []) {
        self.namespaces = namespaces
        self.resources = resources
        self.pods = pods
    }

    /// True when there is nothing to write.
    package var isEmpty: Bool { namespaces.isEmpty && resources.isEmpty && pods.isEmpty }
}

/// What an `Idempotency-Key` was first used for: the bytes it uploaded and the snapshot that became.
package struct IdempotencyRecord: Sendable, Equatable {
    /// The client's key.
    package var key: String
    /// SHA-256 of the uploaded bytes, lowercase hex.
    package var sha256: String
    /// The snapshot created by the first upload with this key.
    package var snapshotID: SnapshotID

    /// Creates a record.
    package init(key: String, sha256: String, snapshotID: SnapshotID) {
        self.key = key
        self.sha256 = sha256
        self.snapshotID = snapshotID
    }
}

/// Why a metadata call failed.
package struct MetadataStoreError: Error, Sendable, CustomStringConvertible {
    private enum Base: Sendable { case idempotencyKeyExists, corruptRow, database }
    private let base: Base
    /// Detail for logs; never contains bound values or credentials.
    package let message: String

    private init(_ base: Base, _ message: String) {
        self.base = base
        self.message = message
    }

    /// The idempotency key is already recorded.
    package static let idempotencyKeyExists = MetadataStoreError(.idempotencyKeyExists, "idempotency key exists")
    /// A stored row cannot be read back into the model.
    package static func corruptRow(_ message: String) -> MetadataStoreError { .init(.corruptRow, message) }
    /// The database failed.
    package static func database(_ message: String) -> MetadataStoreError { .init(.database, message) }

    /// True for ``idempotencyKeyExists``.
    package var isIdempotencyKeyConflict: Bool { base == .idempotencyKeyExists }

    package var description: String { "MetadataStoreError: \(message)" }
}

import Foundation
import KubinModel

/// Holds the snapshots and the idempotency keys of their uploads.
package protocol SnapshotStore: Sendable {
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
}

/// What an `Idempotency-Key` was first used for: the bytes it uploaded and the snapshot that became.
package struct IdempotencyRecord: Sendable, Equatable {
    /// The client's key.
    package var key: String
    /// SHA-256 of the uploaded bytes, lowercase hex.
    package var sha256: String
    /// The snapshot created by the first upload with this key.
    package var snapshotID: SnapshotID

    package init(key: String, sha256: String, snapshotID: SnapshotID) {
        self.key = key
        self.sha256 = sha256
        self.snapshotID = snapshotID
    }
}

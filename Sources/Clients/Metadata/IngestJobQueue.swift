import Foundation
import KubinModel

/// The queue of snapshots waiting to be indexed: jobs claimed under a lease, renewed, released, finished.
package protocol IngestJobQueue: Sendable {
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
}

/// A claimed ingest job: the snapshot to index and which attempt this is (1 for the first).
package struct IngestJob: Sendable, Equatable {
    /// The snapshot, as it was when claimed.
    package var snapshot: Snapshot
    /// 1 for the first attempt; more after a worker died or lost its lease.
    package var attempt: Int

    package init(snapshot: Snapshot, attempt: Int) {
        self.snapshot = snapshot
        self.attempt = attempt
    }
}

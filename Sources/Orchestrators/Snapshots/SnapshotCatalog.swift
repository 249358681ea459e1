import Clients
import KubinModel
import Logging
import NIOCore

/// Reads and removes stored snapshots: the `/api/v1` side that is not the upload.
package final class SnapshotCatalog: Sendable {
    private let metadata: any SnapshotStore
    private let objects: any ObjectStore
    private let analytics: any AnalyticsStore
    private let answers: AnswerCache

    /// Creates the catalog over the given stores; `answers` holds the cached answers dropped on delete.
    package init(
        metadata: any SnapshotStore, objects: any ObjectStore, analytics: any AnalyticsStore, answers: AnswerCache
    ) {
        self.metadata = metadata
        self.objects = objects
        self.analytics = analytics
        self.answers = answers
    }

    /// The snapshot `id` of `tenant`; throws ``KubinError/Code/notFound`` when there is none, or it is another
    /// tenant's (the two answers are the same, so ids of other tenants reveal nothing).
    package func snapshot(_ id: SnapshotID, tenant: TenantID) async throws -> Snapshot {
        guard let snapshot = try await dependency("metadata", { try await metadata.snapshot(id) }),
            snapshot.tenant == tenant
        else { throw KubinError.snapshotNotFound(id.rawValue) }
        return snapshot
    }

    /// One page of snapshots, newest first.
    package func list(_ query: SnapshotQuery) async throws -> Page<Snapshot> {
        try await dependency("metadata") { try await metadata.listSnapshots(query) }
    }

    /// Deletes the snapshot `id`: its rows and index first (so it is gone for every reader at once), its cached
    /// answers, then its archive, manifests, log lines and events. Logs with the request's `logger`.
    /// Throws ``KubinError/Code/notFound`` (also for another tenant's snapshot).
    /// The deletion is an audit log line naming `subject`, the caller.
    package func delete(_ id: SnapshotID, tenant: TenantID, subject: String?, logger: Logger) async throws {
        _ = try await snapshot(id, tenant: tenant)
        guard try await dependency("metadata", { try await metadata.deleteSnapshot(id) }) else {
            throw KubinError.snapshotNotFound(id.rawValue)
        }
        await answers.invalidate(id)
        let folder = ObjectKey.manifests(of: id)
        let archive = ObjectKey.archive(of: id)
        do {
            try await objects.delete(archive)
            try await objects.deleteAll(under: folder)
            try await analytics.deleteSnapshot(id)
        } catch {
            // The snapshot is already gone for every reader; the orphaned bytes are logged for cleanup.
            logger.error(
                "snapshot deleted but not all of its stored data", metadata: ["key": "\(archive)", "error": "\(error)"])
        }
        logger.notice(
            "snapshot deleted",
            metadata: [
                "audit": "snapshot-deleted", "snapshot_id": "\(id)", "tenant": "\(tenant)",
                "subject": "\(subject ?? "unknown")",
            ])
    }

    /// The snapshot `id` with its archive present; throws ``KubinError/Code/notFound`` when either is missing, so a
    /// download can answer 404 before it commits to a 200.
    package func archive(_ id: SnapshotID, tenant: TenantID, logger: Logger) async throws -> Snapshot {
        let snapshot = try await snapshot(id, tenant: tenant)
        let key = ObjectKey.archive(of: snapshot.id)
        guard let info = try await dependency("storage", { try await objects.info(key) }),
            info.size == snapshot.sizeBytes
        else {
            logger.error("a snapshot's archive is missing or has the wrong size", metadata: ["key": "\(key)"])
            throw KubinError(.notFound, "The archive of snapshot '\(id)' is missing.")
        }
        return snapshot
    }

    /// Streams the bytes `range` of the snapshot's original archive (all when nil) to `consume`.
    package func readArchive(
        of snapshot: Snapshot, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void
    ) async throws {
        let key = ObjectKey.archive(of: snapshot.id)
        try await objects.read(key, range: range, into: consume)
    }
}

import Clients
import KubinModel
import Logging
import NIOCore

/// Reads and removes stored snapshots: the `/api/v1` side that is not the upload.
package final class SnapshotCatalog: Sendable {
    private let metadata: any MetadataStore
    private let objects: any ObjectStore
    private let analytics: any AnalyticsStore
    private let answers: AnswerCache

    /// Creates the catalog over the given stores; `answers` holds the cached answers dropped on delete.
    package init(
        metadata: any MetadataStore, objects: any ObjectStore, analytics: any AnalyticsStore, answers: AnswerCache
    ) {
        self.metadata = metadata
        self.objects = objects
        self.analytics = analytics
        self.answers = answers
    }

    /// The snapshot `id`; throws ``KubinError/Code/notFound``.
    package func snapshot(_ id: SnapshotID) async throws -> Snapshot {
        guard let snapshot = try await dependency("metadata", { try await metadata.snapshot(id) }) else {
            throw KubinError.snapshotNotFound(id.rawValue)
        }
        return snapshot
    }

    /// One page of snapshots, newest first.
    package func list(_ query: SnapshotQuery) async throws -> Page<Snapshot> {
        try await dependency("metadata") { try await metadata.listSnapshots(query) }
    }

    /// Deletes the snapshot `id`: its rows and index first (so it is gone for every reader at once), its cached
    /// answers, then its archive, manifests, log lines and events. Logs with the request's `logger`.
    /// Throws ``KubinError/Code/notFound``.
    package func delete(_ id: SnapshotID, logger: Logger) async throws {
        guard try await dependency("metadata", { try await metadata.deleteSnapshot(id) }) else {
            throw KubinError.snapshotNotFound(id.rawValue)
        }
        await answers.invalidate(id)
        let folder = ObjectKey(validating: String(Snapshot.manifestPrefix(for: id).dropLast()))!
        let archive = ObjectKey(validating: Snapshot.archiveKey(for: id))!
        do {
            try await objects.delete(archive)
            try await objects.deleteAll(under: folder)
            try await analytics.deleteSnapshot(id)
        } catch {
            // The snapshot is already gone for every reader; the orphaned bytes are logged for cleanup.
            logger.error(
                "snapshot deleted but not all of its stored data", metadata: ["key": "\(archive)", "error": "\(error)"])
        }
        logger.info("snapshot deleted", metadata: ["snapshot_id": "\(id)"])
    }

    /// The snapshot `id` with its archive present; throws ``KubinError/Code/notFound`` when either is missing, so a
    /// download can answer 404 before it commits to a 200.
    package func archive(_ id: SnapshotID, logger: Logger) async throws -> Snapshot {
        let snapshot = try await snapshot(id)
        let key = ObjectKey(validating: snapshot.archiveKey)!
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
        let key = ObjectKey(validating: snapshot.archiveKey)!
        try await objects.read(key, range: range, into: consume)
    }
}

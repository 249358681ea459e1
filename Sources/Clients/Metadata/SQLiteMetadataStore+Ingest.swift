import Foundation
import KubinModel
import SQLiteNIO

extension SQLiteMetadataStore {
    package func claimIngestJob(worker: String, now: Date, leaseUntil: Date) async throws -> IngestJob? {
        try await database.transaction { transaction in
            guard
                let job = try await transaction.query(
                    """
                    UPDATE ingest_jobs SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1
                    WHERE snapshot_id = (
                        SELECT snapshot_id FROM ingest_jobs WHERE lease_expires_at <= ?
                        ORDER BY created_at, snapshot_id LIMIT 1)
                    RETURNING snapshot_id, attempts
                    """,
                    [.text(worker), .integer(Int(Self.micros(leaseUntil))), .integer(Int(Self.micros(now)))]
                ).first
            else { return nil }
            guard let id = job.column("snapshot_id")?.string, let attempts = job.column("attempts")?.integer else {
                throw MetadataStoreError.corruptRow("ingest_jobs row is unreadable")
            }
            guard
                let row = try await transaction.query(
                    """
                    UPDATE snapshots SET status = 'processing', updated_at = ?
                    WHERE id = ? RETURNING \(Self.columns)
                    """, [.integer(Int(Self.micros(now))), .text(id)]
                ).first
            else { throw MetadataStoreError.corruptRow("an ingest job has no snapshot") }
            return IngestJob(snapshot: try Self.decode(row), attempt: attempts)
        }
    }

    package func renewIngestLease(
        _ id: SnapshotID, worker: String, until: Date, progress: IngestProgress
    ) async throws -> Bool {
        try await database.transaction { transaction in
            guard
                try await !transaction.query(
                    """
                    UPDATE ingest_jobs SET lease_expires_at = ? WHERE snapshot_id = ? AND lease_owner = ?
                    RETURNING snapshot_id
                    """, [.integer(Int(Self.micros(until))), .text(id.rawValue), .text(worker)]
                ).isEmpty
            else { return false }
            _ = try await transaction.query(
                "UPDATE snapshots SET progress_bytes = ?, progress_entries = ? WHERE id = ?",
                [.integer(Int(progress.bytesRead)), .integer(progress.entriesRead), .text(id.rawValue)])
            return true
        }
    }

    package func releaseIngestJob(_ id: SnapshotID, worker: String) async throws {
        _ = try await database.query(
            "UPDATE ingest_jobs SET lease_owner = NULL, lease_expires_at = 0 WHERE snapshot_id = ? AND lease_owner = ?",
            [.text(id.rawValue), .text(worker)])
    }

    package func completeIngest(
        _ id: SnapshotID, worker: String, counts: SnapshotCounts, at: Date
    ) async throws -> Bool {
        try await database.transaction { transaction in
            guard try await Self.removeJob(id, worker: worker, in: transaction) else { return false }
            var counts = counts
            let binds: [SQLiteData] = [.text(id.rawValue)]
            counts.namespaces = try await Self.count("namespaces WHERE snapshot_id = ?", binds, in: transaction)
            counts.resources = try await Self.count("resources WHERE snapshot_id = ?", binds, in: transaction)
            counts.pods = try await Self.count("pods WHERE snapshot_id = ?", binds, in: transaction)
            counts.orphanPods = try await Self.count(
                "pods WHERE snapshot_id = ? AND orphan = 1", binds, in: transaction)
            let encoded = String(decoding: try JSONEncoder().encode(counts), as: UTF8.self)
            _ = try await transaction.query(
                "UPDATE snapshots SET status = 'ready', updated_at = ?, counts = ?, failure_reason = NULL WHERE id = ?",
                [.integer(Int(Self.micros(at))), .text(encoded), .text(id.rawValue)])
            return true
        }
    }

    package func failIngest(_ id: SnapshotID, worker: String, reason: String, at: Date) async throws -> Bool {
        try await database.transaction { transaction in
            guard try await Self.removeJob(id, worker: worker, in: transaction) else { return false }
            try await Self.deleteIndexRows(id, in: transaction)
            _ = try await transaction.query(
                "UPDATE snapshots SET status = 'failed', updated_at = ?, failure_reason = ?, counts = NULL WHERE id = ?",
                [.integer(Int(Self.micros(at))), .text(reason), .text(id.rawValue)])
            return true
        }
    }

    package func clearIndex(_ id: SnapshotID) async throws {
        try await database.transaction { transaction in try await Self.deleteIndexRows(id, in: transaction) }
    }

    private static func removeJob(
        _ id: SnapshotID, worker: String, in transaction: SQLiteDatabase.Transaction
    ) async throws -> Bool {
        try await !transaction.query(
            "DELETE FROM ingest_jobs WHERE snapshot_id = ? AND lease_owner = ? RETURNING snapshot_id",
            [.text(id.rawValue), .text(worker)]
        ).isEmpty
    }

    private static func deleteIndexRows(_ id: SnapshotID, in transaction: SQLiteDatabase.Transaction) async throws {
        for table in ["namespaces", "resources", "pods"] {
            _ = try await transaction.query("DELETE FROM \(table) WHERE snapshot_id = ?", [.text(id.rawValue)])
        }
    }

    private static func count(
        _ from: String, _ binds: [SQLiteData], in transaction: SQLiteDatabase.Transaction
    ) async throws -> Int {
        try await transaction.query("SELECT count(*) AS n FROM \(from)", binds).first?.column("n")?.integer ?? 0
    }
}

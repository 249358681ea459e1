import Foundation
import KubinModel
import Logging
import SQLiteNIO

/// The embedded ``MetadataStore``: one SQLite file (by default `<data dir>/metadata.sqlite`).
///
/// Timestamps are stored as integer microseconds since 1970 so that list order and cursors compare exactly.
package final class SQLiteMetadataStore: MetadataStore {
    let database: SQLiteDatabase

    /// The schema, oldest first. Append new versions; never edit a released one.
    package static let migrations: [Migration] = [
        .init(
            version: 1, name: "snapshots and idempotency keys",
            statements: [
                """
                CREATE TABLE snapshots (
                    id TEXT PRIMARY KEY,
                    cluster TEXT NOT NULL,
                    status TEXT NOT NULL,
                    format TEXT NOT NULL,
                    size_bytes INTEGER NOT NULL,
                    sha256 TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    failure_reason TEXT
                ) STRICT
                """,
                "CREATE INDEX snapshots_by_created ON snapshots (created_at DESC, id DESC)",
                "CREATE INDEX snapshots_by_cluster ON snapshots (cluster, created_at DESC, id DESC)",
                "CREATE INDEX snapshots_by_status ON snapshots (status, created_at DESC, id DESC)",
                """
                CREATE TABLE idempotency_keys (
                    key TEXT PRIMARY KEY,
                    sha256 TEXT NOT NULL,
                    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                    created_at INTEGER NOT NULL
                ) STRICT
                """,
                "CREATE INDEX idempotency_keys_by_snapshot ON idempotency_keys (snapshot_id)",
            ]),
        .init(
            version: 2, name: "ingest jobs and the snapshot index",
            statements: [
                "ALTER TABLE snapshots ADD COLUMN progress_bytes INTEGER",
                "ALTER TABLE snapshots ADD COLUMN progress_entries INTEGER",
                "ALTER TABLE snapshots ADD COLUMN counts TEXT",
                """
                CREATE TABLE ingest_jobs (
                    snapshot_id TEXT PRIMARY KEY REFERENCES snapshots (id) ON DELETE CASCADE,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    lease_owner TEXT,
                    lease_expires_at INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL
                ) STRICT
                """,
                "CREATE INDEX ingest_jobs_by_lease ON ingest_jobs (lease_expires_at, created_at)",
                // Snapshots uploaded before this version get their job now.
                """
                INSERT INTO ingest_jobs (snapshot_id, created_at)
                SELECT id, created_at FROM snapshots WHERE status IN ('stored', 'processing')
                """,
                """
                CREATE TABLE namespaces (
                    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    PRIMARY KEY (snapshot_id, name)
                ) STRICT, WITHOUT ROWID
                """,
                """
                CREATE TABLE resources (
                    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                    kind TEXT NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    api_version TEXT NOT NULL,
                    uid TEXT,
                    labels TEXT NOT NULL,
                    created_at INTEGER,
                    owners TEXT NOT NULL,
                    object_key TEXT NOT NULL,
                    byte_offset INTEGER NOT NULL,
                    byte_length INTEGER NOT NULL,
                    PRIMARY KEY (snapshot_id, kind, namespace, name)
                ) STRICT, WITHOUT ROWID
                """,
                "CREATE INDEX resources_by_namespace ON resources (snapshot_id, namespace, kind, name)",
                """
                CREATE TABLE pods (
                    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    phase TEXT NOT NULL,
                    node TEXT,
                    restarts INTEGER NOT NULL,
                    labels TEXT NOT NULL,
                    containers TEXT NOT NULL,
                    orphan INTEGER NOT NULL,
                    PRIMARY KEY (snapshot_id, namespace, name)
                ) STRICT, WITHOUT ROWID
                """,
                "CREATE INDEX pods_by_restarts ON pods (snapshot_id, restarts DESC, namespace, name)",
            ]),
        .init(
            version: 3, name: "tenants and API keys",
            statements: [
                // Snapshots stored before tenants existed belong to the tenant `default`.
                "ALTER TABLE snapshots ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
                "CREATE INDEX snapshots_by_tenant ON snapshots (tenant, created_at DESC, id DESC)",
                """
                CREATE TABLE api_keys (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    scopes TEXT NOT NULL,
                    name TEXT NOT NULL,
                    secret_sha256 TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    revoked_at INTEGER
                ) STRICT
                """,
            ]),
    ]

    private init(database: SQLiteDatabase) { self.database = database }

    /// Opens (creating and migrating when needed) the database file at `path`.
    package static func open(path: String, logger: Logger) async throws -> SQLiteMetadataStore {
        SQLiteMetadataStore(database: try await SQLiteDatabase.open(path: path, migrations: migrations, logger: logger))
    }

    /// Closes the database. No call may follow.
    package func close() async throws { try await database.close() }

    package func insertSnapshot(_ snapshot: Snapshot, idempotencyKey: IdempotencyRecord?) async throws {
        try await database.transaction { transaction in
            // The transaction holds the write lock (BEGIN IMMEDIATE), so this check cannot race another insert.
            if let record = idempotencyKey,
                try await !transaction.query("SELECT 1 FROM idempotency_keys WHERE key = ?", [.text(record.key)])
                    .isEmpty
            {
                throw MetadataStoreError.idempotencyKeyExists
            }
            _ = try await transaction.query(
                """
                INSERT INTO snapshots (id, tenant, cluster, status, format, size_bytes, sha256, created_at,
                                       updated_at, failure_reason)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(snapshot.id.rawValue), .text(snapshot.tenant.rawValue), .text(snapshot.cluster.rawValue),
                    .text(snapshot.status.rawValue),
                    .text(snapshot.format.rawValue), .integer(Int(snapshot.sizeBytes)), .text(snapshot.sha256),
                    .integer(Int(Self.micros(snapshot.createdAt))), .integer(Int(Self.micros(snapshot.updatedAt))),
                    snapshot.failureReason.map(SQLiteData.text) ?? .null,
                ])
            _ = try await transaction.query(
                "INSERT INTO ingest_jobs (snapshot_id, created_at) VALUES (?, ?)",
                [.text(snapshot.id.rawValue), .integer(Int(Self.micros(snapshot.createdAt)))])
            if let record = idempotencyKey {
                _ = try await transaction.query(
                    "INSERT INTO idempotency_keys (key, sha256, snapshot_id, created_at) VALUES (?, ?, ?, ?)",
                    [
                        .text(record.key), .text(record.sha256), .text(record.snapshotID.rawValue),
                        .integer(Int(Self.micros(snapshot.createdAt))),
                    ])
            }
        }
    }

    package func snapshot(_ id: SnapshotID) async throws -> Snapshot? {
        try await database.query("SELECT \(Self.columns) FROM snapshots WHERE id = ?", [.text(id.rawValue)])
            .first.map(Self.decode)
    }

    package func listSnapshots(_ query: SnapshotQuery) async throws -> Page<Snapshot> {
        var conditions: [String] = []
        var binds: [SQLiteData] = []
        if let tenant = query.tenant {
            conditions.append("tenant = ?")
            binds.append(.text(tenant.rawValue))
        }
        if let cluster = query.cluster {
            conditions.append("cluster = ?")
            binds.append(.text(cluster.rawValue))
        }
        if let status = query.status {
            conditions.append("status = ?")
            binds.append(.text(status.rawValue))
        }
        if let after = query.after {
            conditions.append("(created_at, id) < (?, ?)")
            binds += [.integer(Int(after.createdAtMicros)), .text(after.id.rawValue)]
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        binds.append(.integer(query.limit + 1))  // one more than the page tells whether a next page exists
        let rows = try await database.query(
            "SELECT \(Self.columns) FROM snapshots \(filter) ORDER BY created_at DESC, id DESC LIMIT ?", binds)
        return try Page(rows: rows, limit: query.limit, item: Self.decode) { row, snapshot in
            SnapshotCursor(createdAtMicros: Int64(row.column("created_at")?.integer ?? 0), id: snapshot.id).token
        }
    }

    package func deleteSnapshot(_ id: SnapshotID) async throws -> Bool {
        // idempotency_keys rows go with it (ON DELETE CASCADE).
        try await !database.query("DELETE FROM snapshots WHERE id = ? RETURNING id", [.text(id.rawValue)]).isEmpty
    }

    package func idempotencyRecord(forKey key: String) async throws -> IdempotencyRecord? {
        guard
            let row = try await database.query(
                "SELECT sha256, snapshot_id FROM idempotency_keys WHERE key = ?", [.text(key)]
            ).first
        else { return nil }
        guard let sha256 = row.column("sha256")?.string,
            let id = row.column("snapshot_id")?.string.flatMap(SnapshotID.init(validating:))
        else { throw MetadataStoreError.corruptRow("idempotency_keys row for a key is unreadable") }
        return IdempotencyRecord(key: key, sha256: sha256, snapshotID: id)
    }

    package func checkHealth() async throws {
        _ = try await database.query("SELECT 1")
    }

    // MARK: API keys

    package func insertAPIKey(_ key: APIKey) async throws {
        _ = try await database.query(
            """
            INSERT INTO api_keys (id, tenant, scopes, name, secret_sha256, created_at, revoked_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(key.id), .text(key.tenant.rawValue), .text(APIKeyRows.scopes(key.scopes)), .text(key.name),
                .text(key.secretSHA256), .integer(Int(Self.micros(key.createdAt))),
                key.revokedAt.map { .integer(Int(Self.micros($0))) } ?? .null,
            ])
    }

    package func apiKey(id: String) async throws -> APIKey? {
        try await database.query("SELECT \(APIKeyRows.columns) FROM api_keys WHERE id = ?", [.text(id)])
            .first.map(Self.decodeAPIKey)
    }

    package func listAPIKeys(tenant: TenantID?) async throws -> [APIKey] {
        let rows =
            if let tenant {
                try await database.query(
                    "SELECT \(APIKeyRows.columns) FROM api_keys WHERE tenant = ? ORDER BY created_at, id",
                    [.text(tenant.rawValue)])
            } else {
                try await database.query("SELECT \(APIKeyRows.columns) FROM api_keys ORDER BY created_at, id")
            }
        return try rows.map(Self.decodeAPIKey)
    }

    package func revokeAPIKey(id: String, at: Date) async throws -> Bool {
        try await !database.query(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
            [.integer(Int(Self.micros(at))), .text(id)]
        ).isEmpty
    }

    private static func decodeAPIKey(_ row: SQLiteRow) throws -> APIKey {
        guard let id = row.column("id")?.string,
            let tenant = row.column("tenant")?.string.flatMap(TenantID.init(validating:)),
            let scopes = row.column("scopes")?.string, let name = row.column("name")?.string,
            let hash = row.column("secret_sha256")?.string, let created = row.column("created_at")?.integer
        else { throw MetadataStoreError.corruptRow("api_keys row is unreadable") }
        return APIKey(
            id: id, tenant: tenant, scopes: Scope.parse(scopes.split(separator: " ")), name: name,
            secretSHA256: hash, createdAt: date(micros: created),
            revokedAt: row.column("revoked_at")?.integer.map { date(micros: $0) })
    }

    static let columns =
        "id, tenant, cluster, status, format, size_bytes, sha256, created_at, updated_at, failure_reason, progress_bytes, "
        + "progress_entries, counts"

    static func decode(_ row: SQLiteRow) throws -> Snapshot {
        guard let id = row.column("id")?.string.flatMap(SnapshotID.init(validating:)),
            let tenant = row.column("tenant")?.string.flatMap(TenantID.init(validating:)),
            let cluster = row.column("cluster")?.string.flatMap(ClusterName.init(validating:)),
            let status = row.column("status")?.string.flatMap(SnapshotStatus.init(rawValue:)),
            let format = row.column("format")?.string.flatMap(SnapshotFormat.init(rawValue:)),
            let size = row.column("size_bytes")?.integer, let sha256 = row.column("sha256")?.string,
            let created = row.column("created_at")?.integer, let updated = row.column("updated_at")?.integer
        else { throw MetadataStoreError.corruptRow("snapshots row is unreadable") }
        return Snapshot(
            id: id, cluster: cluster, status: status, format: format, sizeBytes: Int64(size), sha256: sha256,
            createdAt: date(micros: created), updatedAt: date(micros: updated),
            failureReason: row.column("failure_reason")?.string,
            progress: row.column("progress_bytes")?.integer.map { bytes in
                IngestProgress(bytesRead: Int64(bytes), entriesRead: row.column("progress_entries")?.integer ?? 0)
            },
            counts: try row.column("counts")?.string.map { text in
                do { return try JSONDecoder().decode(SnapshotCounts.self, from: Data(text.utf8)) } catch {
                    throw MetadataStoreError.corruptRow("snapshots row has unreadable counts")
                }
            }, tenant: tenant)
    }

    static func micros(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }

    static func date(micros: Int) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }
}

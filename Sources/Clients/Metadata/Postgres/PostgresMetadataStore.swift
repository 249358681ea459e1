import Foundation
import KubinModel
import Logging
import PostgresNIO

/// The production ``MetadataStore``: PostgreSQL through postgres-nio's pooled ``PostgresClient``, shared by every replica.
///
/// The client is a `Service`: the gateway runs it in its service group (``client``). Migrations run at ``open`` on a
/// connection of their own under a session advisory lock, so replicas starting together migrate once. Every value is
/// a bound parameter. Text that orders listings is `COLLATE "C"` (byte order, as SQLite and the cursors assume).
/// Ingest jobs are claimed with `FOR UPDATE SKIP LOCKED`: concurrent claims never wait for or take the same job.
package final class PostgresMetadataStore: MetadataStore {
    /// The connection pool; run it (it is a `Service`) for as long as the store is used.
    package let client: PostgresClient
    let logger: Logger

    private init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Migrates the database at `location` and returns a store whose ``client`` is ready to run.
    package static func open(_ location: PostgresLocation, logger: Logger) async throws -> PostgresMetadataStore {
        try await PostgresMigrator.migrate(location, migrations: PostgresSchema.migrations, logger: logger)
        return PostgresMetadataStore(
            client: PostgresClient(configuration: location.clientConfiguration, backgroundLogger: logger),
            logger: logger)
    }

    static let snapshotColumns =
        "id, tenant, cluster, status, format, size_bytes, sha256, created_at, updated_at, failure_reason, progress_bytes, "
        + "progress_entries, counts"

    // MARK: Snapshots

    package func insertSnapshot(_ snapshot: Snapshot, idempotencyKey: IdempotencyRecord?) async throws {
        try await transaction { connection in
            var insert = PostgresStatement()
            insert.append(
                """
                INSERT INTO snapshots (id, tenant, cluster, status, format, size_bytes, sha256, created_at,
                                       updated_at, failure_reason)
                VALUES (\(try insert.bind(snapshot.id.rawValue)), \(try insert.bind(snapshot.tenant.rawValue)),
                        \(try insert.bind(snapshot.cluster.rawValue)),
                        \(try insert.bind(snapshot.status.rawValue)), \(try insert.bind(snapshot.format.rawValue)),
                        \(try insert.bind(snapshot.sizeBytes)), \(try insert.bind(snapshot.sha256)),
                        \(try insert.bind(Self.micros(snapshot.createdAt))),
                        \(try insert.bind(Self.micros(snapshot.updatedAt))), \(try insert.bind(snapshot.failureReason)))
                """)
            try await connection.execute(insert, logger: logger)
            var job = PostgresStatement()
            job.append(
                "INSERT INTO ingest_jobs (snapshot_id, created_at) VALUES (\(try job.bind(snapshot.id.rawValue)), "
                    + "\(try job.bind(Self.micros(snapshot.createdAt))))")
            try await connection.execute(job, logger: logger)
            guard let record = idempotencyKey else { return }
            var key = PostgresStatement()
            key.append(
                """
                INSERT INTO idempotency_keys (key, sha256, snapshot_id, created_at)
                VALUES (\(try key.bind(record.key)), \(try key.bind(record.sha256)),
                        \(try key.bind(record.snapshotID.rawValue)), \(try key.bind(Self.micros(snapshot.createdAt))))
                ON CONFLICT (key) DO NOTHING RETURNING key
                """)
            // A concurrent insert of the same key waits for the first to commit, then inserts nothing.
            guard try await !connection.rows(key, logger: logger).isEmpty else {
                throw MetadataStoreError.idempotencyKeyExists
            }
        }
    }

    package func snapshot(_ id: SnapshotID) async throws -> Snapshot? {
        var statement = PostgresStatement()
        statement.append("SELECT \(Self.snapshotColumns) FROM snapshots WHERE id = \(try statement.bind(id.rawValue))")
        return try await rows(statement).first.map(Self.decodeSnapshot)
    }

    package func listSnapshots(_ query: SnapshotQuery) async throws -> Page<Snapshot> {
        var statement = PostgresStatement("SELECT \(Self.snapshotColumns) FROM snapshots WHERE TRUE")
        if let tenant = query.tenant { statement.append(" AND tenant = \(try statement.bind(tenant.rawValue))") }
        if let cluster = query.cluster { statement.append(" AND cluster = \(try statement.bind(cluster.rawValue))") }
        if let status = query.status { statement.append(" AND status = \(try statement.bind(status.rawValue))") }
        if let after = query.after {
            statement.append(
                " AND (created_at, id) < (\(try statement.bind(after.createdAtMicros)), "
                    + "\(try statement.bind(after.id.rawValue)))")
        }
        statement.append(" ORDER BY created_at DESC, id DESC LIMIT \(try statement.bind(query.limit + 1))")
        let rows = try await rows(statement)
        return try Page(rows: rows, limit: query.limit, item: Self.decodeSnapshot) { _, snapshot in
            SnapshotCursor(createdAtMicros: Self.micros(snapshot.createdAt), id: snapshot.id).token
        }
    }

    package func deleteSnapshot(_ id: SnapshotID) async throws -> Bool {
        var statement = PostgresStatement()
        statement.append("DELETE FROM snapshots WHERE id = \(try statement.bind(id.rawValue)) RETURNING id")
        return try await !rows(statement).isEmpty
    }

    package func idempotencyRecord(forKey key: String) async throws -> IdempotencyRecord? {
        var statement = PostgresStatement()
        statement.append("SELECT sha256, snapshot_id FROM idempotency_keys WHERE key = \(try statement.bind(key))")
        guard let row = try await rows(statement).first else { return nil }
        guard let id = SnapshotID(validating: try row.value("snapshot_id", as: String.self)) else {
            throw MetadataStoreError.corruptRow("idempotency_keys row for a key is unreadable")
        }
        return IdempotencyRecord(key: key, sha256: try row.value("sha256"), snapshotID: id)
    }

    package func checkHealth() async throws {
        _ = try await rows(PostgresStatement("SELECT 1"))
    }

    // MARK: API keys

    package func insertAPIKey(_ key: APIKey) async throws {
        var statement = PostgresStatement()
        statement.append(
            """
            INSERT INTO api_keys (id, tenant, scopes, name, secret_sha256, created_at, revoked_at)
            VALUES (\(try statement.bind(key.id)), \(try statement.bind(key.tenant.rawValue)),
                    \(try statement.bind(APIKeyRows.scopes(key.scopes))), \(try statement.bind(key.name)),
                    \(try statement.bind(key.secretSHA256)), \(try statement.bind(Self.micros(key.createdAt))),
                    \(try statement.bind(key.revokedAt.map(Self.micros))))
            """)
        _ = try await rows(statement)
    }

    package func apiKey(id: String) async throws -> APIKey? {
        var statement = PostgresStatement()
        statement.append("SELECT \(APIKeyRows.columns) FROM api_keys WHERE id = \(try statement.bind(id))")
        return try await rows(statement).first.map(Self.decodeAPIKey)
    }

    package func listAPIKeys(tenant: TenantID?) async throws -> [APIKey] {
        var statement = PostgresStatement("SELECT \(APIKeyRows.columns) FROM api_keys")
        if let tenant { statement.append(" WHERE tenant = \(try statement.bind(tenant.rawValue))") }
        statement.append(" ORDER BY created_at, id")
        return try await rows(statement).map(Self.decodeAPIKey)
    }

    package func revokeAPIKey(id: String, at: Date) async throws -> Bool {
        var statement = PostgresStatement()
        statement.append(
            "UPDATE api_keys SET revoked_at = \(try statement.bind(Self.micros(at))) "
                + "WHERE id = \(try statement.bind(id)) AND revoked_at IS NULL RETURNING id")
        return try await !rows(statement).isEmpty
    }

    private static func decodeAPIKey(_ row: PostgresRandomAccessRow) throws -> APIKey {
        guard let tenant = TenantID(validating: try row.value("tenant", as: String.self)) else {
            throw MetadataStoreError.corruptRow("api_keys row is unreadable")
        }
        return APIKey(
            id: try row.value("id"), tenant: tenant,
            scopes: Scope.parse(try row.value("scopes", as: String.self).split(separator: " ")),
            name: try row.value("name"), secretSHA256: try row.value("secret_sha256"),
            createdAt: date(micros: try row.value("created_at")),
            revokedAt: try row.value("revoked_at", as: Int64?.self).map { date(micros: $0) })
    }

    // MARK: Helpers

    func rows(_ statement: PostgresStatement) async throws -> [PostgresRandomAccessRow] {
        try await client.rows(statement, logger: logger)
    }

    func transaction<Result: Sendable>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await client.withConnection { connection in
            try await connection.closingWhenCancelled {
                try await connection.transaction(logger: logger) { try await body(connection) }
            }
        }
    }

    static func micros(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }

    static func date(micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }

    static func decodeSnapshot(_ row: PostgresRandomAccessRow) throws -> Snapshot {
        guard let id = SnapshotID(validating: try row.value("id", as: String.self)),
            let tenant = TenantID(validating: try row.value("tenant", as: String.self)),
            let cluster = ClusterName(validating: try row.value("cluster", as: String.self)),
            let status = SnapshotStatus(rawValue: try row.value("status")),
            let format = SnapshotFormat(rawValue: try row.value("format"))
        else { throw MetadataStoreError.corruptRow("snapshots row is unreadable") }
        let progressBytes = try row.value("progress_bytes", as: Int64?.self)
        let progressEntries = try row.value("progress_entries", as: Int64?.self)
        let counts = try row.value("counts", as: String?.self).map { text in
            do { return try JSONDecoder().decode(SnapshotCounts.self, from: Data(text.utf8)) } catch {
                throw MetadataStoreError.corruptRow("snapshots row has unreadable counts")
            }
        }
        return Snapshot(
            id: id, cluster: cluster, status: status, format: format, sizeBytes: try row.value("size_bytes"),
            sha256: try row.value("sha256"), createdAt: date(micros: try row.value("created_at")),
            updatedAt: date(micros: try row.value("updated_at")), failureReason: try row.value("failure_reason"),
            progress: progressBytes.map { IngestProgress(bytesRead: $0, entriesRead: Int(progressEntries ?? 0)) },
            counts: counts, tenant: tenant)
    }
}

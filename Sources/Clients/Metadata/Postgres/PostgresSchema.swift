import Logging
import PostgresNIO

/// The PostgreSQL schema of ``PostgresMetadataStore``, oldest first. Append new versions; never edit a released one.
enum PostgresSchema {
    static let migrations: [Migration] = [
        .init(
            version: 1, name: "snapshots, idempotency keys, ingest jobs and the snapshot index",
            statements: [
                """
                CREATE TABLE snapshots (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    cluster TEXT COLLATE "C" NOT NULL,
                    status TEXT NOT NULL,
                    format TEXT NOT NULL,
                    size_bytes BIGINT NOT NULL,
                    sha256 TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    failure_reason TEXT,
                    progress_bytes BIGINT,
                    progress_entries BIGINT,
                    counts TEXT
                )
                """,
                "CREATE INDEX snapshots_by_created ON snapshots (created_at DESC, id DESC)",
                "CREATE INDEX snapshots_by_cluster ON snapshots (cluster, created_at DESC, id DESC)",
                "CREATE INDEX snapshots_by_status ON snapshots (status, created_at DESC, id DESC)",
                """
                CREATE TABLE idempotency_keys (
                    key TEXT PRIMARY KEY,
                    sha256 TEXT NOT NULL,
                    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX idempotency_keys_by_snapshot ON idempotency_keys (snapshot_id)",
                """
                CREATE TABLE ingest_jobs (
                    snapshot_id TEXT COLLATE "C" PRIMARY KEY REFERENCES snapshots (id) ON DELETE CASCADE,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    lease_owner TEXT,
                    lease_expires_at BIGINT NOT NULL DEFAULT 0,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX ingest_jobs_by_lease ON ingest_jobs (lease_expires_at, created_at)",
                """
                CREATE TABLE namespaces (
                    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                    name TEXT COLLATE "C" NOT NULL,
                    PRIMARY KEY (snapshot_id, name)
                )
                """,
                """
                CREATE TABLE resources (
                    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                    kind TEXT COLLATE "C" NOT NULL,
                    namespace TEXT COLLATE "C" NOT NULL,
                    name TEXT COLLATE "C" NOT NULL,
                    api_version TEXT NOT NULL,
                    uid TEXT,
                    labels JSONB NOT NULL,
                    created_at BIGINT,
                    owners TEXT NOT NULL,
                    object_key TEXT NOT NULL,
                    byte_offset BIGINT NOT NULL,
                    byte_length BIGINT NOT NULL,
                    PRIMARY KEY (snapshot_id, kind, namespace, name)
                )
                """,
                "CREATE INDEX resources_by_namespace ON resources (snapshot_id, namespace, kind, name)",
                """
                CREATE TABLE pods (
                    snapshot_id TEXT NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                    namespace TEXT COLLATE "C" NOT NULL,
                    name TEXT COLLATE "C" NOT NULL,
                    phase TEXT NOT NULL,
                    node TEXT,
                    restarts INTEGER NOT NULL,
                    labels JSONB NOT NULL,
                    containers TEXT NOT NULL,
                    orphan BOOLEAN NOT NULL,
                    PRIMARY KEY (snapshot_id, namespace, name)
                )
                """,
                "CREATE INDEX pods_by_restarts ON pods (snapshot_id, restarts DESC, namespace, name)",
            ]),
        .init(
            version: 3, name: "tenants and API keys",
            statements: [
                // Snapshots stored before tenants existed belong to the tenant `default`.
                "ALTER TABLE snapshots ADD COLUMN tenant TEXT COLLATE \"C\" NOT NULL DEFAULT 'default'",
                "CREATE INDEX snapshots_by_tenant ON snapshots (tenant, created_at DESC, id DESC)",
                """
                CREATE TABLE api_keys (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    tenant TEXT COLLATE "C" NOT NULL,
                    scopes TEXT NOT NULL,
                    name TEXT NOT NULL,
                    secret_sha256 TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
            ]),
    ]
}

/// Applies versioned migrations to a PostgreSQL database, once however many replicas start together: each holds an
/// advisory lock while it migrates, on a connection of its own.
struct PostgresMigrator: MigrationTarget {
    /// The advisory lock every replica takes while it migrates (an arbitrary constant of this project).
    static let lockKey: Int64 = 0x6B75_6269_6E00  // "kubin"

    let connection: PostgresConnection
    let logger: Logger

    static func migrate(_ location: PostgresLocation, migrations: [Migration], logger: Logger) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: try location.connectionConfiguration(), id: 1, logger: logger)
        // Closing the session releases the advisory lock.
        try await closing(connection.close) {
            try await connection.execute(PostgresStatement("SELECT pg_advisory_lock(\(lockKey))"), logger: logger)
            try await PostgresMigrator(connection: connection, logger: logger).migrate(migrations, logger: logger)
        }
    }

    func createLedger() async throws {
        try await connection.execute(
            PostgresStatement(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    + "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"), logger: logger)
    }

    func appliedVersion() async throws -> Int {
        try await connection.rows(
            PostgresStatement("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations"), logger: logger
        ).first?.value("v", as: Int.self) ?? 0
    }

    func apply(_ migration: Migration) async throws {
        _ = try await connection.withTransaction(logger: logger) { transaction in
            for statement in migration.statements {
                try await transaction.execute(PostgresStatement(statement), logger: logger)
            }
            var record = PostgresStatement()
            record.append(
                "INSERT INTO schema_migrations (version, name) VALUES (\(try record.bind(migration.version)), "
                    + "\(try record.bind(migration.name)))")
            try await transaction.execute(record, logger: logger)
        }
    }
}

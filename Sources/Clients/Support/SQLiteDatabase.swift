import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO

/// One SQLite file behind a writer and a reader connection, each with its statements serialised so that
/// transactions are real.
///
/// sqlite-nio runs each call on a thread pool and interleaves calls from different tasks on the same connection, so
/// every use of a connection goes through its ``AsyncLock``. A statement that begins with `SELECT` runs on the reader
/// (`query_only`), which WAL mode lets see the last commit while the writer is inside a long transaction: a page of
/// pods does not wait for an ingest's batch. The two connections run on a thread pool of their own, so neither waits
/// for a thread behind the other or behind file work. `synchronous=FULL` by default (a commit survives power loss)
/// and a busy timeout (sqlite-nio's own busy handler spins) are set on open; schema changes are versioned
/// ``Migration``s.
package final class SQLiteDatabase: Sendable {
    private let connection: SQLiteConnection
    private let reader: SQLiteConnection
    private let threads: NIOThreadPool
    private let lock = AsyncLock()
    private let readerLock = AsyncLock()

    private init(connection: SQLiteConnection, reader: SQLiteConnection, threads: NIOThreadPool) {
        self.connection = connection
        self.reader = reader
        self.threads = threads
    }

    /// How commits reach the disk (SQLite's `synchronous` pragma).
    package enum Durability: String, Sendable {
        /// Every commit is synced: it survives power loss.
        case full = "FULL"
        /// Commits are synced at checkpoints only (``checkpoint()``): faster bulk writes; the database stays
        /// consistent after power loss but may lose the newest commits.
        case normal = "NORMAL"
    }

    /// Opens (creating it and its directory when missing) the database at `path` and applies the `migrations` it lacks.
    package static func open(
        path: String, migrations: [Migration], durability: Durability = .full, logger: Logger
    ) async throws -> SQLiteDatabase {
        try FileManager.default.createDirectory(
            at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        let threads = NIOThreadPool(numberOfThreads: 2)
        threads.start()
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        var opened: [SQLiteConnection] = []
        do {
            let connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: threads, logger: logger, on: loop)
            opened.append(connection)
            for pragma in [
                "PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=\(durability.rawValue)",
                "PRAGMA foreign_keys=ON",
            ] {
                _ = try await connection.query(pragma)
            }
            let reader = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: threads, logger: logger, on: loop)
            opened.append(reader)
            for pragma in ["PRAGMA busy_timeout=5000", "PRAGMA query_only=ON"] { _ = try await reader.query(pragma) }
            let database = SQLiteDatabase(connection: connection, reader: reader, threads: threads)
            try await database.migrate(migrations, logger: logger)
            return database
        } catch {
            for connection in opened { try? await connection.close() }
            try? await threads.shutdownGracefully()
            throw error
        }
    }

    /// `(?, ?), (?, ?)`: placeholders of `rows` rows of `columns` values, for multi-row statements.
    package static func placeholders(rows: Int, columns: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        return Array(repeating: row, count: rows).joined(separator: ", ")
    }

    /// Closes both connections and their threads. No call may follow.
    package func close() async throws {
        try await readerLock.withLock { try await reader.close() }
        try await lock.withLock { try await connection.close() }
        try await threads.shutdownGracefully()
    }

    /// Runs one statement with positional `binds` and returns its rows; a `SELECT` on the reader, anything else on
    /// the writer.
    package func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        if sql.utf8.starts(with: "SELECT".utf8) {
            return try await readerLock.withLock { try await reader.query(sql, binds) }
        }
        return try await lock.withLock { try await connection.query(sql, binds) }
    }

    /// Copies the write-ahead log into the database and syncs both: everything committed before is durable after.
    package func checkpoint() async throws {
        try await lock.withLock {
            let rows = try await connection.query("PRAGMA wal_checkpoint(FULL)")
            guard rows.first?.column("busy")?.integer ?? 0 == 0 else {
                throw SQLiteDatabaseError("the checkpoint could not complete: the database is busy")
            }
        }
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`; any error rolls back and is rethrown.
    package func transaction<Result: Sendable>(
        _ body: (Transaction) async throws -> Result
    ) async throws -> Result {
        try await lock.withLock { try await inTransaction(body) }
    }

    /// The statements of one transaction; valid only inside ``transaction(_:)``.
    package struct Transaction: Sendable {
        fileprivate let connection: SQLiteConnection

        /// Runs one statement with positional `binds` and returns its rows.
        package func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
            try await connection.query(sql, binds)
        }
    }

    /// Caller holds the lock.
    private func inTransaction<Result: Sendable>(
        _ body: (Transaction) async throws -> Result
    ) async throws -> Result {
        _ = try await connection.query("BEGIN IMMEDIATE")
        do {
            let result = try await body(Transaction(connection: connection))
            try await finish("COMMIT")
            return result
        } catch {
            try? await finish("ROLLBACK")
            throw error
        }
    }

    /// COMMIT and ROLLBACK use the future-based call, which runs even when the task is cancelled: a cancelled request
    /// must not leave the connection inside an open transaction.
    private func finish(_ statement: String) async throws {
        let future: EventLoopFuture<[SQLiteRow]> = connection.query(statement, [])
        _ = try await future.get()
    }
}

/// The ledger lives in the database itself; each migration runs in its own transaction.
extension SQLiteDatabase: MigrationTarget {
    func createLedger() async throws {
        _ = try await query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                + "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    }

    func appliedVersion() async throws -> Int {
        try await query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer
            ?? 0
    }

    func apply(_ migration: Migration) async throws {
        try await transaction { transaction in
            for statement in migration.statements { _ = try await transaction.query(statement) }
            _ = try await transaction.query(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                [.integer(migration.version), .text(migration.name)])
        }
    }
}

/// Why a SQLite database could not be opened or migrated.
package struct SQLiteDatabaseError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for logs and start-up messages.
    package let message: String

    init(_ message: String) { self.message = message }

    package var description: String { "SQLiteDatabaseError: \(message)" }
}

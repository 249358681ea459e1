import Logging

/// One schema change: a version (strictly increasing), a name for logs, and its statements (one per string).
package struct Migration: Sendable {
    package var version: Int
    /// A short description.
    package var name: String
    /// The statements, run in order inside one transaction.
    package var statements: [String]

    package init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// What applying migrations needs of a database: its ledger of applied versions (`schema_migrations`) and a way to
/// apply one migration, statements and ledger row, in one transaction.
protocol MigrationTarget {
    /// Creates the ledger when it is missing.
    func createLedger() async throws
    /// The newest version the ledger records (0 for none).
    func appliedVersion() async throws -> Int
    /// Runs `migration`'s statements and records it, all or nothing.
    func apply(_ migration: Migration) async throws
}

extension MigrationTarget {
    /// Applies the `migrations` this database lacks, oldest first; refuses a database whose schema is newer than any
    /// of them (a newer gateway wrote it).
    func migrate(_ migrations: [Migration], logger: Logger) async throws {
        try await createLedger()
        let current = try await appliedVersion()
        let newest = migrations.map(\.version).max() ?? 0
        guard current <= newest else {
            throw MigrationError(
                message: "database schema version \(current) is newer than this gateway knows (\(newest)); "
                    + "run a newer gateway or restore a matching backup")
        }
        for migration in migrations.sorted(by: { $0.version < $1.version }) where migration.version > current {
            try await apply(migration)
            logger.info(
                "applied schema migration",
                metadata: ["version": "\(migration.version)", "migration": "\(migration.name)"])
        }
    }
}

/// A database's schema cannot be brought to this gateway's.
package struct MigrationError: Error, Sendable, CustomStringConvertible {
    package let message: String
    package var description: String { "MigrationError: \(message)" }
}

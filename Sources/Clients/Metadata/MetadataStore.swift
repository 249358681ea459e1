/// Everything metadata holds, in one database: snapshots, API keys, the ingest job queue and the index.
///
/// A caller depends on the part it uses (``SnapshotStore``, ``APIKeyStore``, ``IngestJobQueue``, ``IndexStore``); the
/// whole is for assembly and readiness. Implementations: ``SQLiteMetadataStore`` (the embedded default) and
/// ``PostgresMetadataStore``; both pass one behaviour suite.
package protocol MetadataStore: SnapshotStore, APIKeyStore, IngestJobQueue, IndexStore {
    /// Throws when the store cannot serve requests; used by `/readyz`.
    func checkHealth() async throws
}

/// Why a metadata call failed.
package struct MetadataStoreError: Error, Sendable, CustomStringConvertible {
    private enum Base: Sendable { case idempotencyKeyExists, corruptRow, database }
    private let base: Base
    /// Detail for logs; never contains bound values or credentials.
    package let message: String

    private init(_ base: Base, _ message: String) {
        self.base = base
        self.message = message
    }

    /// The idempotency key is already recorded.
    package static let idempotencyKeyExists = MetadataStoreError(.idempotencyKeyExists, "idempotency key exists")
    /// A stored row cannot be read back into the model.
    package static func corruptRow(_ message: String) -> MetadataStoreError { .init(.corruptRow, message) }
    /// The database failed.
    package static func database(_ message: String) -> MetadataStoreError { .init(.database, message) }

    /// True for ``idempotencyKeyExists``.
    package var isIdempotencyKeyConflict: Bool { base == .idempotencyKeyExists }

    package var description: String { "MetadataStoreError: \(message)" }
}

import KubinModel

/// Holds the index of snapshots: the snapshot rows and the idempotency keys of uploads.
///
/// Implementations: ``SQLiteMetadataStore`` (the embedded default); PostgreSQL comes later. Both pass one behaviour
/// suite.
package protocol MetadataStore: Sendable {
    /// Inserts `snapshot`, and with it `idempotencyKey` when given, in one transaction.
    /// Throws ``MetadataStoreError/idempotencyKeyExists`` when the key is already taken (nothing is inserted then).
    func insertSnapshot(_ snapshot: Snapshot, idempotencyKey: IdempotencyRecord?) async throws

    /// The snapshot `id`, or nil.
    func snapshot(_ id: SnapshotID) async throws -> Snapshot?

    /// One page of snapshots, newest first, filtered and continued as `query` says.
    func listSnapshots(_ query: SnapshotQuery) async throws -> Page<Snapshot>

    /// Deletes the snapshot `id` and every row that belongs to it. Returns false when there was no such snapshot.
    func deleteSnapshot(_ id: SnapshotID) async throws -> Bool

    /// The upload an idempotency key was first used for, or nil when the key is unused.
    func idempotencyRecord(forKey key: String) async throws -> IdempotencyRecord?

    /// Throws when the store cannot serve requests; used by `/readyz`.
    func checkHealth() async throws
}

/// What an `Idempotency-Key` was first used for: the bytes it uploaded and the snapshot that became.
package struct IdempotencyRecord: Sendable, Equatable {
    /// The client's key.
    package var key: String
    /// SHA-256 of the uploaded bytes, lowercase hex.
    package var sha256: String
    /// The snapshot created by the first upload with this key.
    package var snapshotID: SnapshotID

    /// Creates a record.
    package init(key: String, sha256: String, snapshotID: SnapshotID) {
        self.key = key
        self.sha256 = sha256
        self.snapshotID = snapshotID
    }
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

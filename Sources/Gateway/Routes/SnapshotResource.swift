import Foundation
import KubinModel

/// The JSON form of a ``Snapshot``: the resource every `/api/v1/snapshots` answer carries.
struct SnapshotResource: Encodable {
    /// The snapshot id.
    var id: String
    /// The cluster name.
    var cluster: String
    /// `stored`, `processing`, `ready` or `failed`.
    var status: String
    /// `gzip`, `zip` or `json`.
    var format: String
    /// The archive's size.
    var sizeBytes: Int64
    /// The archive's SHA-256, lowercase hex.
    var sha256: String
    /// When the upload was accepted.
    var createdAt: Date
    /// When the status last changed.
    var updatedAt: Date
    /// Why processing failed; absent otherwise.
    var failureReason: String?
    /// How far indexing has come: archive bytes and entries read.
    var progress: Progress?
    /// What the index holds, once `ready`.
    var counts: SnapshotCounts?

    /// Indexing progress.
    struct Progress: Encodable {
        var bytesRead: Int64
        var entriesRead: Int
    }

    /// The resource of `snapshot`.
    init(_ snapshot: Snapshot) {
        id = snapshot.id.rawValue
        cluster = snapshot.cluster.rawValue
        status = snapshot.status.rawValue
        format = snapshot.format.rawValue
        sizeBytes = snapshot.sizeBytes
        sha256 = snapshot.sha256
        createdAt = snapshot.createdAt
        updatedAt = snapshot.updatedAt
        failureReason = snapshot.failureReason
        progress = snapshot.progress.map { Progress(bytesRead: $0.bytesRead, entriesRead: $0.entriesRead) }
        counts = snapshot.counts
    }
}

/// A page of a list as JSON: `{items: [...], nextCursor: string|null}` (`nextCursor` always present).
struct PageResource<Item: Encodable>: Encodable {
    /// The page's items.
    var items: [Item]
    /// The next page's cursor, or null on the last page.
    var nextCursor: String?

    private enum CodingKeys: String, CodingKey { case items, nextCursor }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}

import Foundation
import KubinModel

/// The JSON form of a ``Snapshot``: the resource every `/api/v1/snapshots` answer carries.
struct SnapshotResource: Encodable {
    var id: String
    var cluster: String
    var status: String
    var format: String
    var sizeBytes: Int64
    var sha256: String
    var createdAt: Date
    var updatedAt: Date
    var failureReason: String?

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
    }
}

/// A page of a list as JSON: `{items: [...], nextCursor: string|null}` (`nextCursor` always present).
struct PageResource<Item: Encodable>: Encodable {
    var items: [Item]
    var nextCursor: String?

    private enum CodingKeys: String, CodingKey { case items, nextCursor }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}

import Foundation
import KubinSupport

/// A position in the newest-first list of snapshots: the last item of the previous page.
///
/// Clients see it only as an opaque string (`nextCursor`); its form may change between versions.
package struct SnapshotCursor: Sendable, Equatable {
    /// The `createdAt` of the last item seen, in microseconds since 1970.
    package var createdAtMicros: Int64
    /// The id of the last item seen; breaks ties between equal timestamps.
    package var id: SnapshotID

    package init(createdAtMicros: Int64, id: SnapshotID) {
        self.createdAtMicros = createdAtMicros
        self.id = id
    }

    /// The opaque text form: base64url of `v1.<micros>.<id>`.
    package var token: String {
        Base64URL.encode(Array("v1.\(createdAtMicros).\(id.rawValue)".utf8))
    }

    /// Decodes a token made by ``token``; nil for anything else.
    package init?(token: some StringProtocol) {
        guard token.utf8.count <= 128 else { return nil }
        guard let data = Base64URL.decode(token), let text = String(data: data, encoding: .utf8) else {
            return nil
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", let micros = Int64(parts[1]), micros >= 0,
            let id = SnapshotID(validating: parts[2])
        else { return nil }
        self.init(createdAtMicros: micros, id: id)
    }
}

/// What `GET /api/v1/snapshots` asks for.
package struct SnapshotQuery: Sendable, Equatable {
    /// The most items on one page.
    package static let maxLimit = 500
    /// The page size when the client names none.
    package static let defaultLimit = 50

    /// Only snapshots of this tenant (nil: every tenant's, for operators' tools).
    package var tenant: TenantID?
    /// Only snapshots of this cluster.
    package var cluster: ClusterName?
    /// Only snapshots in this status.
    package var status: SnapshotStatus?
    /// Page size, 1 to ``maxLimit``.
    package var limit: Int
    /// Continue after this item.
    package var after: SnapshotCursor?

    package init(
        tenant: TenantID? = nil, cluster: ClusterName? = nil, status: SnapshotStatus? = nil,
        limit: Int = Self.defaultLimit, after: SnapshotCursor? = nil
    ) {
        self.tenant = tenant
        self.cluster = cluster
        self.status = status
        self.limit = limit
        self.after = after
    }
}

/// One page of a list, and where the next one starts (nil on the last page).
package struct Page<Item: Sendable>: Sendable {
    /// The items of this page, in list order.
    package var items: [Item]
    /// The opaque cursor of the next page, or nil when this is the last.
    package var nextCursor: String?

    package init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

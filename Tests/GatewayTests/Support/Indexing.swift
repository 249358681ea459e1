import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport
import Testing

extension LiveGateway {
    /// Uploads `bytes` and returns the new snapshot's id.
    func upload(_ bytes: [UInt8], cluster: String = "test") async throws -> String {
        let answer = try await json(
            .POST, "/api/v1/snapshots?cluster=\(cluster)", body: .bytes(ByteBuffer(bytes: bytes)))
        guard answer.status == 202, let id = answer.object["id"] as? String else {
            throw TestFailure("the upload was not accepted (got \(answer.status))")
        }
        return id
    }

    /// Waits until the snapshot `id` is `ready` or `failed` and returns it.
    func indexed(_ id: String) async throws -> [String: Any] {
        var snapshot: [String: Any] = [:]
        try await eventually("snapshot \(id) indexed", timeout: .seconds(60)) {
            snapshot = try await json(.GET, "/api/v1/snapshots/\(id)").object
            return ["ready", "failed"].contains(snapshot["status"] as? String)
        }
        return snapshot
    }

    /// Every item of an internal listing, following `nextCursor` with pages of `limit`.
    func all(_ path: String, limit: Int = 1000) async throws -> [[String: Any]] {
        var items: [[String: Any]] = []
        var cursor: String?
        repeat {
            let separator = path.contains("?") ? "&" : "?"
            let page = try await json(
                .GET, path + separator + "limit=\(limit)" + (cursor.map { "&cursor=\($0)" } ?? ""))
            guard page.status == 200 else { throw TestFailure("no page of \(path) (got \(page.status))") }
            items += page.object["items"] as? [[String: Any]] ?? []
            cursor = page.object["nextCursor"] as? String
        } while cursor != nil
        return items
    }
}

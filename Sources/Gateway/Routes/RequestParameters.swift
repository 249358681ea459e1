import HTTPTypes
import Hummingbird
import KubinModel

/// Reads and validates path, query and header parameters; a bad one throws a 400 problem naming it.
enum RequestParameters {
    /// Refuses query parameters other than `allowed`, and any given twice: a typo must not be silently ignored.
    static func onlyAllowed(_ request: Request, _ allowed: Set<String>) throws {
        var seen: Set<String> = []
        for (name, _) in request.uri.queryParameters {
            let name = String(name)
            guard allowed.contains(name) else {
                throw KubinError.invalidParameter(
                    String(name.prefix(64)),
                    allowed.isEmpty
                        ? "this route takes no query parameters"
                        : "this route takes only " + allowed.sorted().joined(separator: ", "))
            }
            guard seen.insert(name).inserted else { throw KubinError.invalidParameter(name, "give it at most once") }
        }
    }

    /// The `{id}` path parameter.
    static func snapshotID(_ context: GatewayRequestContext) throws -> SnapshotID {
        let text = context.parameters.get("id") ?? ""
        guard let id = SnapshotID(validating: text) else {
            throw KubinError.invalidParameter("id", "expected a snapshot id (a lowercase UUID)")
        }
        return id
    }

    /// The `cluster` query parameter; nil when absent and not `required`.
    static func cluster(_ request: Request, required: Bool) throws -> ClusterName? {
        guard let text = request.uri.queryParameters["cluster"] else {
            if required { throw KubinError.invalidParameter("cluster", "it is required; \(ClusterName.rule)") }
            return nil
        }
        guard let cluster = ClusterName(validating: text) else {
            throw KubinError.invalidParameter("cluster", ClusterName.rule)
        }
        return cluster
    }

    /// The `status` query parameter.
    static func status(_ request: Request) throws -> SnapshotStatus? {
        guard let text = request.uri.queryParameters["status"] else { return nil }
        guard let status = SnapshotStatus(rawValue: String(text)) else {
            throw KubinError.invalidParameter(
                "status", "expected one of " + SnapshotStatus.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return status
    }

    /// The `limit` query parameter, 1 to `maximum`.
    static func limit(_ request: Request, default defaultValue: Int, maximum: Int) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return defaultValue }
        guard let limit = Int(text), (1...maximum).contains(limit) else {
            throw KubinError.invalidParameter("limit", "expected a whole number from 1 to \(maximum)")
        }
        return limit
    }

    /// The `cursor` query parameter.
    static func cursor(_ request: Request) throws -> SnapshotCursor? {
        guard let text = request.uri.queryParameters["cursor"] else { return nil }
        guard let cursor = SnapshotCursor(token: text) else {
            throw KubinError.invalidParameter("cursor", "expected the nextCursor of an earlier page")
        }
        return cursor
    }

    /// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[idempotencyKeyHeader] else { return nil }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw KubinError.invalidParameter("Idempotency-Key", "expected 1 to 255 visible ASCII characters")
        }
        return key
    }

    /// The `Content-Length` header, when present.
    static func contentLength(_ request: Request) throws -> Int64? {
        guard let text = request.headers[.contentLength] else { return nil }
        guard let length = Int64(text), length >= 0 else {
            throw KubinError.invalidParameter("Content-Length", "expected a byte count")
        }
        return length
    }

    /// True when the request has `Expect: 100-continue`; any other expectation is refused (417).
    static func expectsContinue(_ request: Request) throws -> Bool {
        guard let expectation = request.headers[.expect] else { return false }
        guard expectation.lowercased() == "100-continue" else {
            throw KubinError(.expectationFailed, "Only 'Expect: 100-continue' is supported.")
        }
        return true
    }

    /// The `Idempotency-Key` header's name.
    static let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!
}

import AsyncHTTPClient
import Foundation
import KubinModel
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@testable import Gateway

/// Every kind of bad input the gateway meets, each with the exact status and problem type it must get, on one
/// gateway; and then not one 5xx answer in its metrics.
@Suite struct BadInputCorpusTests {
    /// One request and what it must get.
    struct Case: Sendable {
        var name: String
        var method: HTTPMethod = .GET
        var path: String
        var headers: [(String, String)] = []
        var body: [UInt8]? = nil
        /// nil: the good token; "" : no Authorization header.
        var authorization: String? = nil
        var status: Int
        /// The problem type's last segment; nil for a success (no problem).
        var type: String?
        var parameter: String? = nil
        var reason: String? = nil
    }

    static let problems = "https://kubin.dev/problems/"

    @Test func everyBadInputGetsItsExactProblemAndNothingIsA5xx() async throws {
        let corpus = try TokenCorpus()
        try await withLiveGateway(corpus.settings.merging(["uploads.maxBytes": "1MiB"]) { $1 }) { live in
            let good = corpus["es256"]
            let bearer = ("Authorization", "Bearer \(good)")
            // A ready snapshot (for ranges and views), and one whose archive failed (for 409s).
            let readyID = try #require(
                try await live.json(
                    .POST, "/api/v1/snapshots?cluster=corpus", headers: [bearer],
                    body: .bytes(ByteBuffer(bytes: try GeneratedDump(form: "directory", seed: 1).bytes))
                )
                .object["id"] as? String)
            try await live.eventually("the snapshot indexed", timeout: .seconds(60)) {
                try await live.json(.GET, "/api/v1/snapshots/\(readyID)", headers: [bearer]).object["status"]
                    as? String == "ready"
            }
            var cases = Self.tokenCases(corpus) + Self.parameterCases(ready: readyID) + Self.headerCases(ready: readyID)
            cases += Self.bodyCases()
            var count = 0
            for test in cases {
                var headers = test.headers
                switch test.authorization {
                case nil: headers.append(bearer)
                case "": break
                case let value?: headers.append(("Authorization", value))
                }
                let answer = try await live.send(
                    test.method, test.path, headers: headers, body: test.body.map { .bytes(ByteBuffer(bytes: $0)) },
                    authorized: false)
                Self.check(answer, test)
                count += 1
            }
            count += try await Self.archiveCases(live, bearer: bearer)
            count += try await Self.rawCases(live, token: good)
            #expect(count >= 150, "\(count) cases")

            // Not one answer was a server error. 501 is not one: it is RFC 9112's refusal of what the gateway does not
            // do (CONNECT, a transfer coding other than chunked), answered on purpose.
            let metrics = try await live.metricsText()
            let serverErrors = metrics.split(separator: "\n").filter {
                $0.hasPrefix("gateway_requests_total{") && $0.contains("status=\"5") && !$0.contains("status=\"501\"")
            }
            #expect(serverErrors.isEmpty, "\(serverErrors)")
        }
    }

    static func check(
        _ answer: (status: Int, headers: HTTPHeaders, body: ByteBuffer), _ test: Case,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(answer.status == test.status, "\(test.name)", sourceLocation: sourceLocation)
        guard let type = test.type else { return }
        let object =
            (try? JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView))) as? [String: Any] ?? [:]
        #expect(
            answer.headers.first(name: "Content-Type") == "application/problem+json", "\(test.name)",
            sourceLocation: sourceLocation)
        #expect(object["type"] as? String == problems + type, "\(test.name)", sourceLocation: sourceLocation)
        #expect(object["status"] as? Int == test.status, "\(test.name)", sourceLocation: sourceLocation)
        if let parameter = test.parameter {
            #expect(object["parameter"] as? String == parameter, "\(test.name)", sourceLocation: sourceLocation)
        }
        if let reason = test.reason {
            #expect(object["reason"] as? String == reason, "\(test.name)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Tokens and credentials

    static func tokenCases(_ corpus: TokenCorpus) -> [Case] {
        let path = "/api/v1/snapshots"
        var cases = AuthenticationTests.refusals.map { token, reason in
            Case(
                name: "token \(token)", path: path, authorization: "Bearer \(corpus[token])", status: 401,
                type: "unauthenticated", reason: reason)
        }
        let unauthenticated: [(String, String, String)] = [
            ("no header", "", "missing-credentials"),
            ("basic", "Basic dXNlcjpwYXNzd29yZA==", "unsupported-scheme"),
            ("bare bearer", "Bearer", "unsupported-scheme"),
            ("token without scheme", corpus["es256"], "unsupported-scheme"),
            ("digest", "Digest username=\"x\"", "unsupported-scheme"),
            ("key prefix only", "Bearer kubin_", "malformed-api-key"),
            ("key too short", "Bearer kubin_0123_abcd", "malformed-api-key"),
            (
                "key uppercase", "Bearer kubin_0123456789ABCDEF_\(String(repeating: "a", count: 64))",
                "malformed-api-key"
            ),
            (
                "key extra part", "Bearer kubin_0123456789abcdef_\(String(repeating: "a", count: 64))_x",
                "malformed-api-key"
            ),
            ("key unknown", "Bearer kubin_0123456789abcdef_\(String(repeating: "a", count: 64))", "unknown-api-key"),
            ("token of 20 KB", "Bearer " + String(repeating: "a", count: 20_000), "token-too-large"),
            ("token of dots", "Bearer ....", "malformed-token"),
            ("token with spaces", "Bearer a b c", "malformed-token"),
        ]
        for (name, header, reason) in unauthenticated {
            cases.append(
                Case(
                    name: "credential \(name)", path: path, authorization: header, status: 401, type: "unauthenticated",
                    reason: reason))
        }
        cases.append(
            Case(
                name: "two authorization headers", path: path,
                headers: [("Authorization", "Bearer \(corpus["es256"])")], authorization: "Bearer \(corpus["es256"])",
                status: 401, type: "unauthenticated", reason: "repeated-authorization"))
        cases.append(
            Case(
                name: "read-only token uploads", method: .POST, path: path + "?cluster=c",
                authorization: "Bearer \(corpus["read-only"])", status: 403, type: "forbidden"))
        cases.append(
            Case(
                name: "write-only token lists", path: path, authorization: "Bearer \(corpus["write-only"])",
                status: 403, type: "forbidden"))
        return cases
    }

    // MARK: Parameters

    static func parameterCases(ready: String) -> [Case] {
        let unknown = "01a210bd-04ab-7688-b1e6-ff0dd674448a"
        var cases: [Case] = []
        func bad(_ path: String, _ parameter: String) {
            cases.append(
                Case(name: path, path: path, status: 400, type: "invalid-parameter", parameter: parameter))
        }
        for value in ["0", "501", "-1", "1.5", "ten", "", "99999999999999999999"] {
            bad("/api/v1/snapshots?limit=\(value)", "limit")
        }
        for value in ["garbage", "%00", "AAAA", String(repeating: "x", count: 300)] {
            bad("/api/v1/snapshots?cursor=\(value)", "cursor")
        }
        for value in ["done", "READY", "%20ready", ""] { bad("/api/v1/snapshots?status=\(value)", "status") }
        for value in ["-bad", "a%2Fb", "a%20b", "", String(repeating: "c", count: 129), "%E2%9C%93"] {
            bad("/api/v1/snapshots?cluster=\(value)", "cluster")
        }
        let ids = [
            "not-a-uuid", "0192F1C4-6F2A-7B3E-9C1D-2A4B6C8D0E1F", "..%2F..%2Fetc%2Fpasswd",
            String(repeating: "a", count: 200),
            "%7B0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1f%7D", "null", "%00", "0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1",
        ]
        for id in ids {
            bad("/api/v1/snapshots/\(id)", "id")
            bad("/internal/api/v1/snapshots/\(id)/pods", "id")
        }
        bad("/api/v1/snapshots/\(ids[0])/archive", "id")
        bad("/api/v1/snapshots?colour=red", "colour")
        bad("/api/v1/snapshots?limit=1&limit=2", "limit")
        bad("/api/v1/snapshots/\(ready)?verbose=true", "verbose")
        bad("/api/v1/snapshots/\(ready)/archive?download=1", "download")
        cases.append(
            Case(
                name: "upload with an unknown parameter", method: .POST,
                path: "/api/v1/snapshots?cluster=c&tenant=other",
                body: jsonBody(100), status: 400, type: "invalid-parameter", parameter: "tenant"))
        let base = "/internal/api/v1/snapshots/\(ready)"
        bad("\(base)/pods?colour=red", "colour")
        bad("\(base)/pods?limit=1&limit=2", "limit")
        bad("\(base)/pods?limit=1001", "limit")
        bad("\(base)/logs?limit=5001", "limit")
        bad("\(base)/logs?since=yesterday", "since")
        bad("\(base)/logs?until=2024-13-01T00:00:00Z", "until")
        bad("\(base)/logs?since=2024-01-02T00:00:00Z&until=2024-01-01T00:00:00Z", "until")
        bad("\(base)/logs?previous=yes", "previous")
        bad("\(base)/logs?q=\(String(repeating: "q", count: 1025))", "q")
        bad("\(base)/logs?q=", "q")
        bad("\(base)/pods?namespace=\(String(repeating: "n", count: 254))", "namespace")
        bad("\(base)/pods?namespace=%01", "namespace")
        bad("\(base)/resources?kind=", "kind")
        bad("\(base)/events?type=%0A", "type")
        for selector in ["a%20in%20(b", "!!", "a=(b", "a%20in%20b", "=x", "a%20notin", "a%3Db%2C", "a%3Db%20c"] {
            bad("\(base)/resources?labelSelector=\(selector)", "labelSelector")
        }
        bad("\(base)/pods?cursor=garbage", "cursor")
        bad("\(base)/pods?cursor=\(IndexCursor(["Pod", "ns", "name"]).token)", "cursor")
        bad("\(base)/overview?limit=5", "limit")
        bad("\(base)/namespaces?q=x", "q")
        cases.append(
            Case(name: "unknown snapshot", path: "/api/v1/snapshots/\(unknown)", status: 404, type: "not-found"))
        cases.append(
            Case(
                name: "unknown snapshot view", path: "/internal/api/v1/snapshots/\(unknown)/overview", status: 404,
                type: "not-found"))
        cases.append(
            Case(name: "unknown manifest", path: "\(base)/resources/Pod/-/nothing", status: 404, type: "not-found"))
        cases.append(
            Case(name: "unknown route", path: "/api/v1/snapshots/\(ready)/nope", status: 404, type: "not-found"))
        cases.append(Case(name: "unknown API version", path: "/api/v2/snapshots", status: 404, type: "not-found"))
        cases.append(
            Case(
                name: "PUT on the collection", method: .PUT, path: "/api/v1/snapshots", status: 405,
                type: "method-not-allowed"))
        cases.append(
            Case(
                name: "PATCH a snapshot", method: .PATCH, path: "/api/v1/snapshots/\(ready)", status: 405,
                type: "method-not-allowed"))
        cases.append(
            Case(
                name: "URL too long", path: "/api/v1/snapshots?cluster=" + String(repeating: "u", count: 9000),
                status: 414, type: "uri-too-long"))
        return cases
    }

    // MARK: Headers

    static func headerCases(ready: String) -> [Case] {
        let archive = "/api/v1/snapshots/\(ready)/archive"
        return [
            Case(
                name: "idempotency key too long", method: .POST, path: "/api/v1/snapshots?cluster=c",
                headers: [("Idempotency-Key", String(repeating: "k", count: 256))], body: jsonBody(100), status: 400,
                type: "invalid-parameter", parameter: "Idempotency-Key"),
            Case(
                name: "idempotency key with a space", method: .POST, path: "/api/v1/snapshots?cluster=c",
                headers: [("Idempotency-Key", "two words")], body: jsonBody(100), status: 400,
                type: "invalid-parameter",
                parameter: "Idempotency-Key"),
            Case(
                name: "idempotency key with unicode", method: .POST, path: "/api/v1/snapshots?cluster=c",
                headers: [("Idempotency-Key", "clé")], body: jsonBody(100), status: 400, type: "invalid-parameter",
                parameter: "Idempotency-Key"),
            Case(
                name: "expectation other than continue", method: .POST, path: "/api/v1/snapshots?cluster=c",
                headers: [("Expect", "the-unexpected")], body: jsonBody(100), status: 417, type: "expectation-failed"),
            Case(
                name: "range past the end", path: archive, headers: [("Range", "bytes=999999999-")], status: 416,
                type: "range-not-satisfiable"),
            Case(name: "range of garbage is ignored", path: archive, headers: [("Range", "bytes=abc")], status: 200),
            Case(
                name: "range of several parts is ignored", path: archive, headers: [("Range", "bytes=0-1,5-6")],
                status: 200),
            Case(name: "inverted range is ignored", path: archive, headers: [("Range", "bytes=9-1")], status: 200),
            Case(
                name: "range of an exponent is ignored", path: archive, headers: [("Range", "bytes=5-1e20")],
                status: 200),
            Case(
                name: "range starting past any size", path: archive,
                headers: [("Range", "bytes=99999999999999999999-")], status: 416, type: "range-not-satisfiable"),
            Case(
                name: "range ending past any size is clamped", path: archive,
                headers: [("Range", "bytes=0-99999999999999999999")], status: 206),
            Case(
                name: "if-none-match of garbage", path: archive,
                headers: [("If-None-Match", "garbage, \"unterminated")], status: 200),
            Case(
                name: "if-none-match star", path: "/internal/api/v1/snapshots/\(ready)/overview",
                headers: [("If-None-Match", "*")], status: 304),
            Case(
                name: "request id of garbage", path: "/api/v1/snapshots",
                headers: [("X-Request-ID", "bad id \"quoted\"")], status: 200),
            Case(
                name: "request id too long", path: "/api/v1/snapshots",
                headers: [("X-Request-ID", String(repeating: "r", count: 200))], status: 200),
            Case(
                name: "origin not allowed", path: "/api/v1/snapshots", headers: [("Origin", "https://evil.example")],
                status: 200),
            Case(
                name: "preflight without credentials", method: .OPTIONS, path: "/api/v1/snapshots",
                headers: [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "DELETE")],
                authorization: "", status: 204),
        ]
    }

    // MARK: Bodies

    static func bodyCases() -> [Case] {
        let upload = "/api/v1/snapshots?cluster=c"
        return [
            Case(
                name: "upload without cluster", method: .POST, path: "/api/v1/snapshots", body: jsonBody(100),
                status: 400, type: "invalid-parameter", parameter: "cluster"),
            Case(
                name: "upload of an executable", method: .POST, path: upload,
                body: Array("MZ\u{90}\u{0}".utf8) + Array(repeating: 0, count: 100), status: 415,
                type: "unsupported-format"),
            Case(
                name: "upload of an empty body", method: .POST, path: upload, body: [], status: 415,
                type: "unsupported-format"),
            Case(
                name: "upload of plain text", method: .POST, path: upload, body: Array("hello, world\n".utf8),
                status: 415, type: "unsupported-format"),
            Case(
                name: "upload of a PNG", method: .POST, path: upload,
                body: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], status: 415, type: "unsupported-format"),
            Case(
                name: "upload of a bzip2", method: .POST, path: upload, body: Array("BZh91AY&SY".utf8), status: 415,
                type: "unsupported-format"),
            Case(
                name: "upload over the limit", method: .POST, path: upload, body: jsonBody(2 << 20), status: 413,
                type: "payload-too-large"),
            Case(
                name: "body on a delete", method: .DELETE,
                path: "/api/v1/snapshots/01a210bd-04ab-7688-b1e6-ff0dd674448a",
                body: Array(repeating: 0x41, count: 70_000), status: 413, type: "payload-too-large"),
            Case(
                name: "body on a listing", path: "/api/v1/snapshots", body: Array(repeating: 0x41, count: 70_000),
                status: 413, type: "payload-too-large"),
            Case(
                name: "upload declaring more than the limit", method: .POST, path: upload,
                headers: [("Expect", "100-continue")], body: jsonBody(2 << 20), status: 413, type: "payload-too-large"),
        ]
    }
}

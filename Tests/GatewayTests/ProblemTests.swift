import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import Gateway

/// Every error is an RFC 9457 problem with a stable type, the request id and, for bad parameters, the parameter.
@Suite struct ProblemTests {
    static let requestID = HTTPField.Name("X-Request-ID")!

    func expectProblem(
        _ response: TestResponse, status: Int, type: String, parameter: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(response.status.code == status, sourceLocation: sourceLocation)
        #expect(response.headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
        let problem = response.object
        #expect(problem["type"] as? String == "https://kubin.dev/problems/\(type)", sourceLocation: sourceLocation)
        #expect(problem["status"] as? Int == status, sourceLocation: sourceLocation)
        #expect((problem["title"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect((problem["detail"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect((problem["instance"] as? String)?.hasPrefix("/") == true, sourceLocation: sourceLocation)
        #expect(problem["requestId"] as? String == response.headers[Self.requestID], sourceLocation: sourceLocation)
        #expect(problem["parameter"] as? String == parameter, sourceLocation: sourceLocation)
    }

    @Test func unknownRoutesAndMethodsAreProblems() async throws {
        try await withRouterApp { client in
            try await client.execute(uri: "/nope", method: .get) {
                self.expectProblem($0, status: 404, type: "not-found")
            }
            try await client.execute(uri: "/api/v1/snapshots", method: .put) { response in
                self.expectProblem(response, status: 405, type: "method-not-allowed")
                #expect(response.headers[.allow] == "GET, POST")
            }
            try await client.execute(uri: "/healthz", method: .delete) { response in
                self.expectProblem(response, status: 405, type: "method-not-allowed")
                #expect(response.headers[.allow] == "GET")
            }
        }
    }

    @Test(arguments: [
        ("/api/v1/snapshots?limit=0", "limit"), ("/api/v1/snapshots?limit=501", "limit"),
        ("/api/v1/snapshots?limit=ten", "limit"), ("/api/v1/snapshots?cursor=garbage", "cursor"),
        ("/api/v1/snapshots?status=done", "status"), ("/api/v1/snapshots?cluster=-bad", "cluster"),
        ("/api/v1/snapshots/not-a-uuid", "id"), ("/api/v1/snapshots/0192F1C4-6F2A-7B3E-9C1D-2A4B6C8D0E1F", "id"),
        ("/api/v1/snapshots/..%2F..%2Fetc/archive", "id"),
    ])
    func malformedParametersAreNamed(_ uri: String, _ parameter: String) async throws {
        try await withRouterApp { client in
            try await client.execute(uri: uri, method: .get) {
                self.expectProblem($0, status: 400, type: "invalid-parameter", parameter: parameter)
            }
        }
    }

    @Test func uploadParametersAreCheckedBeforeTheBodyIsRead() async throws {
        try await withRouterApp { client in
            let body = ByteBuffer(string: "{}")
            try await client.execute(uri: "/api/v1/snapshots", method: .post, body: body) {
                self.expectProblem($0, status: 400, type: "invalid-parameter", parameter: "cluster")
                #expect($0.headers[.connection] == "close")
            }
            try await client.execute(uri: "/api/v1/snapshots?cluster=a%20b", method: .post, body: body) {
                self.expectProblem($0, status: 400, type: "invalid-parameter", parameter: "cluster")
            }
            try await client.execute(
                uri: "/api/v1/snapshots?cluster=ok", method: .post,
                headers: [HTTPField.Name("Idempotency-Key")!: String(repeating: "k", count: 256)], body: body
            ) { self.expectProblem($0, status: 400, type: "invalid-parameter", parameter: "Idempotency-Key") }
            try await client.execute(uri: "/api/v1/snapshots?cluster=ok", method: .post, body: ByteBuffer(string: "MZ"))
            {
                self.expectProblem($0, status: 415, type: "unsupported-format")
            }
            try await client.execute(uri: "/api/v1/snapshots/0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1f", method: .get) {
                self.expectProblem($0, status: 404, type: "not-found")
            }
        }
    }

    @Test func wellFormedRequestIDsAreKeptAndOthersReplaced() async throws {
        try await withRouterApp { client in
            try await client.execute(uri: "/healthz", method: .get, headers: [Self.requestID: "trace-1.a:b_c"]) {
                #expect($0.headers[Self.requestID] == "trace-1.a:b_c")
            }
            for bad in ["has space", String(repeating: "x", count: 129), "quote\"", "é"] {
                try await client.execute(uri: "/nope", method: .get, headers: [Self.requestID: bad]) { response in
                    let id = response.headers[Self.requestID] ?? ""
                    #expect(id != bad && RequestIDMiddleware.isWellFormed(id))
                    #expect(response.object["requestId"] as? String == id)
                }
            }
            var seen = Set<String>()
            for _ in 0..<20 {
                try await client.execute(uri: "/healthz", method: .get) {
                    seen.insert($0.headers[Self.requestID] ?? "")
                }
            }
            #expect(seen.count == 20, "generated ids are unique")
        }
    }
}

@Suite struct JSONEscapingTests {
    /// Log fields and ClickHouse rows share one escaper: whatever the text, JSON parsers read back the same string.
    @Test func escapedTextParsesBackToItself() throws {
        for text in ["plain", "quote \" and \\ backslash", "\n\r\t\u{01}\u{1F}", "é 日本 🚀", "\u{7F}", ""] {
            let line = "{\"v\":\(JSONLogHandler.quoted(text))}"
            let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(parsed?["v"] == text, "\(text.debugDescription)")
        }
    }
}

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// `Expect: 100-continue`, HEAD, missing archives, draining, the data-directory lock.
@Suite struct HTTPBehaviourTests {
    @Test func continueIsSentOnlyWhenTheUploadIsAdmitted() async throws {
        try await withLiveGateway { live in
            let body = jsonBody(3000)
            let (interim, final) = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send(
                    "POST /api/v1/snapshots?cluster=expect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(live.token)\r\nExpect: 100-continue\r\n"
                        + "Content-Length: \(body.count)\r\n\r\n")
                let interim = try await conversation.read(through: "\r\n\r\n")
                try await conversation.send(body)
                let final = try await conversation.read(through: "\r\n\r\n")
                return (interim, final)
            }
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue"))
            #expect(final.hasPrefix("HTTP/1.1 202 Accepted"))

            // A refused upload gets its answer instead of 100 Continue, and its body is never needed.
            let refused = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send(
                    "POST /api/v1/snapshots HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(live.token)\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"
                )
                return try await conversation.read(through: "\r\n\r\n")
            }
            #expect(refused.hasPrefix("HTTP/1.1 400 Bad Request"))
            #expect(refused.lowercased().contains("connection: close"))

            let unknown = try await live.json(
                .POST, "/api/v1/snapshots?cluster=x", headers: [("Expect", "something-else")],
                body: .bytes(ByteBuffer(bytes: body)))
            #expect(unknown.status == 417)
            #expect(unknown.object["type"] as? String == "https://kubin.dev/problems/expectation-failed")
        }
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", 400, "malformed-request"),
        ("GET / HTTP/1.1\r\nHost x\r\n\r\n", 400, "malformed-request"),
        ("POST /api/v1/snapshots HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "malformed-request"),
        (
            "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 100_000) + "\r\n\r\n", 431,
            "request-header-fields-too-large"
        ),
    ])
    func bytesThatAreNotHTTPGetAProblem(_ request: String, _ status: Int, _ type: String) async throws {
        try await withLiveGateway { live in
            let answer = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send(request)
                return try await conversation.read(through: "}")
            }
            #expect(answer.hasPrefix("HTTP/1.1 \(status) "))
            #expect(answer.contains("Content-Type: application/problem+json"))
            #expect(answer.contains("\"type\":\"https://kubin.dev/problems/\(type)\""))
            #expect(answer.contains("X-Request-ID: "))
        }
    }

    /// No upgrade is served, and NIO's decoder reads nothing after a request asking for one: the answer closes the
    /// connection instead of leaving the next request on it to wait for the head time-out.
    @Test func anAnswerToAnUpgradeRequestClosesTheConnection() async throws {
        try await withLiveGateway { live in
            let head = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send(
                    "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                return try await conversation.read(through: "\r\n\r\n")
            }
            #expect(head.hasPrefix("HTTP/1.1 200"))
            #expect(head.lowercased().contains("connection: close"))
        }
    }

    @Test func headAnswersTheHeadersOfGet() async throws {
        try await withLiveGateway { live in
            let bytes = jsonBody(12_345)
            let id = try #require(
                try await live.json(.POST, "/api/v1/snapshots?cluster=h", body: .bytes(ByteBuffer(bytes: bytes)))
                    .object["id"] as? String)
            let head = try await live.send(.HEAD, "/api/v1/snapshots/\(id)/archive")
            #expect(head.status == 200 && head.body.readableBytes == 0)
            #expect(head.headers.first(name: "Content-Length") == String(bytes.count))
            #expect(head.headers.first(name: "ETag") == "\"\(sha256Hex(bytes))\"")
            #expect(try await live.send(.HEAD, "/healthz").status == 200)
            #expect(try await live.send(.HEAD, "/api/v1/snapshots/\(UUID().uuidString.lowercased())").status == 404)
        }
    }

    @Test func aMissingArchiveIs404BeforeTheAnswerStarts() async throws {
        try await withLiveGateway { live in
            let id = try #require(
                try await live.json(
                    .POST, "/api/v1/snapshots?cluster=m", body: .bytes(ByteBuffer(bytes: jsonBody(500)))
                )
                .object["id"] as? String)
            try FileManager.default.removeItem(atPath: live.dataDirectory + "/storage/objects/snapshots/\(id)/archive")
            let download = try await live.json(.GET, "/api/v1/snapshots/\(id)/archive")
            #expect(download.status == 404)
            #expect((download.object["detail"] as? String)?.contains("archive") == true)
            #expect(try await live.send(.GET, "/api/v1/snapshots/\(id)").status == 200)
        }
    }

    @Test func aDrainingInstanceRefusesNewUploadsButStillServesReads() async throws {
        try await withLiveGateway { live in
            live.gateway.readiness.startDraining()
            let upload = try await live.json(
                .POST, "/api/v1/snapshots?cluster=d", body: .bytes(ByteBuffer(bytes: jsonBody(500))))
            #expect(upload.status == 503)
            #expect(upload.object["type"] as? String == "https://kubin.dev/problems/shutting-down")
            #expect(upload.headers.first(name: "Retry-After") == "1")
            #expect(try await live.send(.GET, "/api/v1/snapshots").status == 200)
            #expect(try await live.send(.GET, "/readyz").status == 503)
        }
    }

    @Test func aSecondInstanceCannotUseTheSameDataDirectory() async throws {
        let directory = NSTemporaryDirectory() + "kubin-lock-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try GatewayConfiguration(raw: ["data.dir": directory])
        try await Gateway.with(configuration: configuration, logger: Logger(label: "test")) { _ in
            await #expect {
                try await Gateway.with(configuration: configuration, logger: Logger(label: "test")) { _ in }
            } throws: { "\($0)".contains("another kubin-gateway is using the data directory") }
        }
        // Released when the first one closed. A child this test process spawns at that moment holds a copy of the
        // lock's descriptor until its exec (one loaded CI run saw that), so the next instance may need a few tries.
        try await poll("the data directory's lock to be free", timeout: .seconds(10)) {
            (try? await Gateway.with(configuration: configuration, logger: Logger(label: "test")) { _ in }) != nil
        }
    }
}

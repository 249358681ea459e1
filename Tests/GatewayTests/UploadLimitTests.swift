import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// Admission, size limit and broken clients, over real sockets.
@Suite struct UploadLimitTests {
    /// 101 trickling uploads start together: exactly one (whichever came last) is refused at once, without its body
    /// being read, and every admitted one completes.
    @Test func ofOneHundredAndOneTricklingUploadsExactlyTheOverflowIsRefused() async throws {
        // Without a rate for uploads: the 101st upload of one caller in a minute must meet the slots, not the rate.
        try await withLiveGateway(["rateLimit.upload": "off"]) { live in
            let limit = live.gateway.configuration.uploads.maxConcurrent
            #expect(limit == 100)
            let release = Gate()
            try await withThrowingTaskGroup(of: (status: Int, requestID: String?, retryAfter: String?).self) { group in
                for index in 0...limit {
                    group.addTask {
                        let bytes = jsonBody(200_000, seed: index)
                        let answer = try await live.send(
                            .POST, "/api/v1/snapshots?cluster=trickle",
                            body: .stream(GatedBody(bytes, gate: release), length: .known(Int64(bytes.count))))
                        return (
                            answer.status, answer.headers.first(name: "X-Request-ID"),
                            answer.headers.first(name: "Retry-After")
                        )
                    }
                }
                // While every body is held back, the only answer that can arrive is the refusal.
                let first = try #require(try await group.next())
                #expect(first.status == 429)
                #expect(first.retryAfter == "1")
                #expect(try await live.metric("gateway_uploads_in_flight") == Double(limit))
                #expect(try await live.metric("gateway_uploads_rejected_total{reason=\"concurrency\"}") == 1)
                try await live.eventually("the refusal's access line") {
                    live.logs.entries(message: "request").contains { $0["request_id"] as? String == first.requestID }
                }
                let line = live.logs.entries(message: "request").first {
                    $0["request_id"] as? String == first.requestID
                }
                #expect(line?["status"] as? Int == 429)
                #expect(line?["bytes_in"] as? Int == 0, "the refused upload's body was not read")

                release.open()
                var statuses: [Int] = []
                for try await answer in group { statuses.append(answer.status) }
                #expect(statuses.count == limit && statuses.allSatisfy { $0 == 202 })
            }
            let listed = try await live.json(.GET, "/api/v1/snapshots?limit=500").object["items"] as? [Any]
            #expect(listed?.count == limit)
            #expect(try await live.metric("gateway_uploads_in_flight") == 0)
        }
    }

    @Test func anOversizeUploadGets413AndLeavesNothing() async throws {
        try await withLiveGateway(["uploads.maxBytes": "64KiB"]) { live in
            let big = jsonBody(1 << 20)
            let declared = try await live.json(
                .POST, "/api/v1/snapshots?cluster=c", body: .bytes(ByteBuffer(bytes: big)))
            #expect(declared.status == 413)
            #expect(declared.object["type"] as? String == "https://kubin.dev/problems/payload-too-large")
            let chunks = stride(from: 0, to: big.count, by: 8192).map { ByteBuffer(bytes: big[$0..<$0 + 8192]) }
            let streamed = try await live.json(
                .POST, "/api/v1/snapshots?cluster=c", body: .stream(StreamedBody(chunks: chunks), length: .unknown))
            #expect(streamed.status == 413)
            #expect(live.storedFiles.isEmpty)
            #expect(try await live.metric("gateway_uploads_rejected_total{reason=\"too_large\"}") == 2)
            let fits = try await live.send(
                .POST, "/api/v1/snapshots?cluster=c", body: .bytes(ByteBuffer(bytes: jsonBody(64 * 1024))))
            #expect(fits.status == 202)
        }
    }

    @Test(arguments: [true, false])
    func aClientThatDisappearsMidUploadLeavesNothing(abort: Bool) async throws {
        try await withLiveGateway { live in
            let head = Array(
                "POST /api/v1/snapshots?cluster=gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(live.token)\r\nContent-Length: 5000000\r\n\r\n"
                    .utf8)
            let chunkedHead = Array(
                "POST /api/v1/snapshots?cluster=gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(live.token)\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .utf8)
            let part = jsonBody(300_000)
            try await RawClient.sendThenClose(port: live.port, [head, part], abort: abort)
            try await RawClient.sendThenClose(
                port: live.port, [chunkedHead, Array("30000\r\n".utf8), Array(part.prefix(0x30000))], abort: abort)
            try await live.eventually("both broken uploads to end") {
                try await live.metric("gateway_uploads_rejected_total{reason=\"incomplete\"}") == 2
            }
            #expect(try await live.metric("gateway_uploads_in_flight") == 0)
            #expect(live.storedFiles.isEmpty)
            let listed = try await live.json(.GET, "/api/v1/snapshots").object["items"] as? [Any]
            #expect(listed?.isEmpty == true)
        }
    }
}

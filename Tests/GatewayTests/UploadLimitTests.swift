import AsyncHTTPClient
import Foundation
import KubinModel
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
        try await withLiveGateway(["rateLimit.upload": "off", "uploads.maxConcurrentPerPrincipal": "100"]) { live in
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

    /// 100 uploads trickling a byte every 300 ms take every slot; each runs out of its pace within the body time-out
    /// (6 s here: long enough for the refusal to be seen on a loaded machine) and gets 408 with nothing kept, and a
    /// real upload, refused while they hold the slots, is admitted.
    @Test func tricklingBodiesCannotHoldTheUploadSlots() async throws {
        let settings = [
            "rateLimit.upload": "off", "uploads.maxConcurrentPerPrincipal": "100", "uploads.bodyTimeout": "6s",
            "uploads.minBytesPerSecond": "1KiB",
        ]
        try await withLiveGateway(settings) { live in
            // The real upload's tries, for the message of a failure.
            var attempts: [String] = []
            let head =
                "POST /api/v1/snapshots?cluster=trickle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(live.token)\r\n"
                + "Content-Length: 1048576\r\n\r\n"
            try await withThrowingTaskGroup(of: String.self) { tricklers in
                for _ in 0..<100 {
                    tricklers.addTask {
                        try await RawClient.trickle(
                            port: live.port, head: head, start: [0x1F, 0x8B], every: .milliseconds(300))
                    }
                }
                try await live.eventually("the tricklers to hold every slot") {
                    try await live.metric("gateway_uploads_in_flight") == 100
                }
                let refused = try await live.send(
                    .POST, "/api/v1/snapshots?cluster=real", body: .bytes(ByteBuffer(bytes: jsonBody(10_000))))
                #expect(refused.status == 429, "every slot is held")
                var admitted = 0
                try await live.eventually("a real upload admitted", timeout: .seconds(30)) {
                    let answer = try await live.send(
                        .POST, "/api/v1/snapshots?cluster=real", body: .bytes(ByteBuffer(bytes: jsonBody(10_000))))
                    admitted = answer.status
                    attempts.append("\(answer.status) \(String(buffer: answer.body).prefix(200))")
                    return answer.status == 202
                }
                #expect(admitted == 202)
                var answers: [String] = []
                for try await answer in tricklers { answers.append(answer) }
                #expect(answers.count == 100)
                #expect(answers.allSatisfy { $0.hasPrefix("HTTP/1.1 408") }, "\(answers.first ?? "")")
            }
            let tooSlow = try await live.metric("gateway_uploads_rejected_total{reason=\"too_slow\"}")
            // At least: on a loaded machine a real upload's body can miss the 2 s start as well, and is retried.
            #expect(tooSlow ?? 0 >= 100)
            #expect(try await live.metric("gateway_uploads_in_flight") == 0)
            let listed = try await live.json(.GET, "/api/v1/snapshots?limit=500").object["items"] as? [[String: Any]]
            #expect(
                listed?.map { $0["cluster"] as? String } == ["real"],
                "nothing of the tricklers is kept; the real upload's tries: \(attempts)")
            #expect(try live.storedObjects().count == 1, "only the real archive is stored")
        }
    }

    /// One caller holding its share of the slots is refused the next one (429, reason principal); another caller
    /// is still admitted.
    @Test func oneCallerCannotTakeEverySlot() async throws {
        try await withLiveGateway(["rateLimit.upload": "off", "uploads.maxConcurrentPerPrincipal": "2"]) { live in
            let release = Gate()
            try await withThrowingTaskGroup(of: Int.self) { held in
                for index in 0..<2 {
                    held.addTask {
                        let bytes = jsonBody(50_000, seed: index)
                        return try await live.send(
                            .POST, "/api/v1/snapshots?cluster=held",
                            body: .stream(GatedBody(bytes, gate: release), length: .known(Int64(bytes.count)))
                        ).status
                    }
                }
                try await live.eventually("two uploads in flight") {
                    try await live.metric("gateway_uploads_in_flight") == 2
                }
                let third = try await live.json(
                    .POST, "/api/v1/snapshots?cluster=held", body: .bytes(ByteBuffer(bytes: jsonBody(1000))))
                #expect(third.status == 429)
                #expect(third.object["reason"] as? String == "principal")
                #expect(third.headers.first(name: "Retry-After") != nil)
                let signer = try #require(live.gateway.access.developmentSigner)
                let other = try await signer.token(
                    subject: "someone-else", tenant: .legacy, scopes: Set(Scope.allCases), validity: .seconds(600))
                let admitted = try await live.send(
                    .POST, "/api/v1/snapshots?cluster=other", headers: [("Authorization", "Bearer \(other)")],
                    body: .bytes(ByteBuffer(bytes: jsonBody(1000))))
                #expect(admitted.status == 202, "another caller has slots")
                release.open()
                for try await status in held { #expect(status == 202) }
            }
            #expect(try await live.metric("gateway_uploads_rejected_total{reason=\"principal\"}") == 1)
        }
    }

    /// A body that never comes after `100 Continue`, and one that stops short of its Content-Length, get 408 once
    /// the body time-out passes, instead of holding their slots until the connection's idle time-out.
    @Test func silentBodiesGet408AtTheBodyTimeout() async throws {
        try await withLiveGateway(["uploads.bodyTimeout": "1s", "uploads.minBytesPerSecond": "0"]) { live in
            let head =
                "POST /api/v1/snapshots?cluster=silent HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(live.token)\r\n"
            let afterContinue = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send(head + "Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
                _ = try await conversation.read(through: "100 Continue\r\n\r\n")
                return try await conversation.read(through: "\r\n\r\n")
            }
            #expect(afterContinue.hasPrefix("HTTP/1.1 408"), "\(afterContinue)")
            let short = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send(head + "Content-Length: 5000\r\n\r\n")
                try await conversation.send(Array(jsonBody(5000).prefix(100)))
                return try await conversation.read(through: "\r\n\r\n")
            }
            #expect(short.hasPrefix("HTTP/1.1 408"), "\(short)")
            #expect(try await live.metric("gateway_uploads_rejected_total{reason=\"too_slow\"}") == 2)
            #expect(try await live.metric("gateway_uploads_in_flight") == 0)
            #expect(live.storedFiles.isEmpty)
        }
    }

    /// A chunk that declares more bytes than any upload may hold is refused on sight (413), before any of its bytes,
    /// and the connection closes after the answer: nothing waits for the bytes it promised. (The body time-out is ten
    /// minutes here, so an answer from the pace would not come within the test's time limit.)
    @Test(.timeLimit(.minutes(1))) func aChunkPromisingMoreThanTheLimitIsRefusedOnSight() async throws {
        try await withLiveGateway(["uploads.bodyTimeout": "10m", "uploads.maxBytes": "64KiB"]) { live in
            let head =
                "POST /api/v1/snapshots?cluster=huge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(live.token)\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n"
            let (answer, rest) = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send(head + "400\r\n")
                try await conversation.send(Array(jsonBody(5000).prefix(0x400)))
                try await conversation.send("\r\nffffffffffffffff\r\n")
                let answer = try await conversation.read(through: "\r\n\r\n")
                return (answer, try await conversation.read(through: "never sent"))
            }
            #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer)")
            #expect(answer.lowercased().contains("connection: close"), "\(answer)")
            #expect(rest.contains("declares 1048575 bytes or more"), "the problem says why: \(rest)")
            #expect(try await live.metric("gateway_uploads_rejected_total{reason=\"too_large\"}") == 1)
            #expect(try await live.metric("gateway_uploads_in_flight") == 0)
            #expect(live.storedFiles.isEmpty)
        }
    }
}

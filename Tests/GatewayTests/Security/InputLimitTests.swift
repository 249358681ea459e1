import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// Requests larger or slower than the gateway accepts, and more connections than it serves.
@Suite struct InputLimitTests {
    /// The status line and the problem `type` of a raw answer.
    static func summary(_ answer: String) -> String {
        let status = answer.split(separator: "\r\n").first.map(String.init) ?? ""
        let type = answer.range(of: #""type":"https://kubin.dev/problems/"#).map { range in
            String(answer[range.upperBound...].prefix { $0 != "\"" })
        }
        return "\(status) \(type ?? "-")"
    }

    @Test func oversizedURLsHeadersAndBodiesAreRefusedByName() async throws {
        try await withLiveGateway(["http.maxHeaderBytes": "4KiB", "http.maxURLBytes": "2KiB"]) { live in
            let longURL = "/api/v1/snapshots?cluster=" + String(repeating: "a", count: 3000)
            let url = try await live.json(.GET, longURL)
            #expect(url.status == 414 && url.object["type"] as? String == "https://kubin.dev/problems/uri-too-long")

            let header = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send(
                    "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 5000))\r\n\r\n")
                return try await conversation.read(through: "}")
            }
            #expect(
                Self.summary(header) == "HTTP/1.1 431 Request Header Fields Too Large request-header-fields-too-large")

            let body = try await live.json(
                .DELETE, "/api/v1/snapshots/0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1f",
                body: .bytes(ByteBuffer(repeating: 0x41, count: 100_000)))
            #expect(body.status == 413)
            #expect(body.object["type"] as? String == "https://kubin.dev/problems/payload-too-large")
            // A small body on such a route is read past, and the route answers.
            let small = try await live.json(
                .DELETE, "/api/v1/snapshots/0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1f",
                body: .bytes(ByteBuffer(repeating: 0x41, count: 100)))
            #expect(small.status == 404)
            // The upload keeps its own, larger limit.
            let upload = try await live.json(
                .POST, "/api/v1/snapshots?cluster=c", body: .bytes(ByteBuffer(bytes: jsonBody(200_000))))
            #expect(upload.status == 202)
        }
    }

    @Test func aClientTricklingItsHeadGets408AndIsDisconnected() async throws {
        try await withLiveGateway(["http.headerTimeout": "300ms"]) { live in
            let head = Array(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: \(String(repeating: "p", count: 40))\r\n\r\n".utf8)
            let (answer, sent) = try await RawClient.converse(port: live.port) { conversation in
                let outbound = conversation.outbound
                return try await withThrowingTaskGroup(of: Int.self) { group in
                    // One byte every 50 ms: the head would take 4 s, far past the 300 ms allowed.
                    group.addTask {
                        var sent = 0
                        for byte in head where !Task.isCancelled {
                            do { try await outbound.write(ByteBuffer(bytes: [byte])) } catch { break }
                            sent += 1
                            try? await Task.sleep(for: .milliseconds(50))
                        }
                        return sent
                    }
                    let answer = try await conversation.read(through: "}")
                    group.cancelAll()
                    return (answer, try await group.next() ?? 0)
                }
            }
            #expect(Self.summary(answer) == "HTTP/1.1 408 Request Timeout request-timeout", "\(answer)")
            #expect(answer.lowercased().contains("connection: close"))
            #expect(sent < head.count, "refused before the head was whole")

            // A connection that waits between requests is the idle timeout's business: it is still served.
            let served = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = try await conversation.read(through: "\"ok\"}")
                try await Task.sleep(for: .milliseconds(700))
                try await conversation.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                return try await conversation.read(through: "\"ok\"}")
            }
            #expect(served.hasPrefix("HTTP/1.1 200"), "\(served)")
        }
    }

    @Test func connectionsPastTheLimitGet503AndTheSlotIsReusedOnceFreed() async throws {
        try await withLiveGateway(["http.maxConnections": "2"]) { live in
            let request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            try await RawClient.converse(port: live.port) { first in
                try await first.send(request)
                #expect(try await first.read(through: "\"ok\"}").hasPrefix("HTTP/1.1 200"))
                try await RawClient.converse(port: live.port) { second in
                    try await second.send(request)
                    #expect(try await second.read(through: "\"ok\"}").hasPrefix("HTTP/1.1 200"))
                    let third = try await RawClient.converse(port: live.port) { third in
                        try await third.read(through: "}")
                    }
                    #expect(
                        Self.summary(third) == "HTTP/1.1 503 Service Unavailable too-many-connections", "\(third)")
                    #expect(third.contains("Retry-After: 1"))
                }
            }
            // Both closed: a new connection is served again (once the server has seen them close).
            try await live.eventually("a free slot") {
                // Until the server has seen both close, a new connection is refused (and closed under our write).
                let answer = try? await RawClient.converse(port: live.port) { conversation in
                    try await conversation.send(request)
                    return try await conversation.read(through: "}")
                }
                return answer?.hasPrefix("HTTP/1.1 200") == true
            }
        }
    }

    @Test func metricsAreServedOnTheirOwnListenerOnly() async throws {
        try await withLiveGateway { live in
            #expect(try await live.send(.GET, "/metrics").status == 404)
            let text = try await live.metricsText()
            #expect(text.contains("gateway_requests_total"))
            #expect(live.metricsPort != live.port)
        }
    }
}

import AsyncHTTPClient
import Foundation
import KubinModel
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@testable import Gateway

/// The corpus of archives and of byte streams that are not HTTP: sent on their own paths, not as requests.
extension BadInputCorpusTests {
    // MARK: Archives

    /// Archives that are accepted (stored durably) and then fail to index: each must end `failed` with a reason,
    /// and its views answer 409 `snapshot-not-ready`.
    static func archiveCases(_ live: LiveGateway, bearer: (String, String)) async throws -> Int {
        let nodes = Array(#"{"kind":"NodeList","items":[{"metadata":{"name":"n"}}]}"#.utf8)
        func tar(_ entries: [(String, [UInt8], Character, String)]) throws -> [UInt8] {
            var writer = TarWriter()
            for (name, bytes, type, link) in entries { writer.add(name, bytes, type: type, linkTarget: link) }
            writer.finish()
            return try gzip(writer.bytes)
        }
        let valid = try tar([("dump/nodes.json", nodes, "0", "")])
        var damaged = TarWriter()
        damaged.add("dump/nodes.json", nodes)
        damaged.finish()
        var damagedBytes = damaged.bytes
        damagedBytes[10] ^= 0xFF  // inside the first name: its header's checksum no longer matches
        let nulPath = "dump/" + String(repeating: "a", count: 100) + "\u{0}/nodes.json"  // long: written as pax
        // What the failure must say, where the archive is refused for one specific reason.
        let reasons = ["damaged tar header": "checksum", "NUL in a pax path": "NUL byte"]
        let archives: [(String, [UInt8])] = [
            ("symlink", try tar([("dump/nodes.json", nodes, "0", ""), ("dump/evil", [], "2", "/etc/shadow")])),
            ("hard link", try tar([("dump/nodes.json", nodes, "0", ""), ("dump/hard", [], "1", "dump/nodes.json")])),
            (
                "traversal",
                try tar([("dump/nodes.json", nodes, "0", ""), ("dump/../../etc/passwd", Array("x".utf8), "0", "")])
            ),
            ("absolute path", try tar([("/etc/cron.d/evil", Array("x".utf8), "0", "")])),
            ("device", try tar([("dump/nodes.json", nodes, "0", ""), ("dump/null", [], "3", "")])),
            ("fifo", try tar([("dump/nodes.json", nodes, "0", ""), ("dump/pipe", [], "6", "")])),
            ("invalid JSON", try tar([("dump/ns/pods.json", Array(#"{"kind":"PodList","items":[{"#.utf8), "0", "")])),
            ("truncated gzip", Array(valid.dropLast(30))),
            ("gzip of garbage", try gzip(Array(repeating: 0x42, count: 4000))),
            ("gzip header only", [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03]),
            ("zip of garbage", Array("PK\u{3}\u{4}".utf8) + Array(repeating: 0x00, count: 200)),
            ("JSON cut short", Array(#"{"kind":"PodList","items":[{"metadata":"#.utf8)),
            ("damaged tar header", try gzip(damagedBytes)),
            ("NUL in a pax path", try tar([(nulPath, nodes, "0", "")])),
        ]
        for (name, bytes) in archives {
            let upload = try await live.json(
                .POST, "/api/v1/snapshots?cluster=archives", headers: [bearer], body: .bytes(ByteBuffer(bytes: bytes)),
                authorized: false)
            #expect(upload.status == 202, "\(name): accepted, then judged")
            let id = try #require(upload.object["id"] as? String, "\(name)")
            var snapshot: [String: Any] = [:]
            try await live.eventually("\(name) indexed", timeout: .seconds(60)) {
                snapshot = try await live.json(.GET, "/api/v1/snapshots/\(id)", headers: [bearer], authorized: false)
                    .object
                return ["ready", "failed"].contains(snapshot["status"] as? String)
            }
            #expect(snapshot["status"] as? String == "failed", "\(name)")
            let failure = snapshot["failureReason"] as? String ?? ""
            #expect(!failure.isEmpty, "\(name)")
            if let words = reasons[name] { #expect(failure.contains(words), "\(name): \(failure)") }
            let view = try await live.send(
                .GET, "/internal/api/v1/snapshots/\(id)/overview", headers: [bearer], authorized: false)
            check(view, Case(name: "\(name) view", path: "", status: 409, type: "snapshot-not-ready"))
        }
        return archives.count
    }

    // MARK: Bytes that are not HTTP

    static func rawCases(_ live: LiveGateway, token: String) async throws -> Int {
        let cases: [(String, String, String)] = [
            ("garbage", "GARBAGE\r\n\r\n", "400 malformed-request"),
            ("header without a colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", "400 malformed-request"),
            (
                "length of letters", "POST /api/v1/snapshots HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                "400 malformed-request"
            ),
            (
                "two lengths",
                "POST /api/v1/snapshots HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                "400 malformed-request"
            ),
            (
                "negative length", "POST /api/v1/snapshots HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                "400 malformed-request"
            ),
            (
                "bad chunk size",
                "POST /api/v1/snapshots?cluster=c HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
                "400 malformed-request"
            ),
            (
                "chunk size past any upload",
                "POST /api/v1/snapshots?cluster=c HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
                "413 payload-too-large"
            ),
            ("CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "501 not-implemented"),
            ("no Host", "GET /healthz HTTP/1.1\r\n\r\n", "400 malformed-request"),
            ("two Hosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400 malformed-request"),
            ("a Host that is no host", "GET /healthz HTTP/1.1\r\nHost: a b/c\r\n\r\n", "400 malformed-request"),
            (
                "gzip under chunked",
                "POST /api/v1/snapshots?cluster=c HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                "501 not-implemented"
            ),
            (
                "unknown transfer coding",
                "POST /api/v1/snapshots?cluster=c HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nTransfer-Encoding: foo\r\n\r\nabc",
                "501 not-implemented"
            ),
            ("space in the path", "GET /api v1 HTTP/1.1\r\nHost: x\r\n\r\n", "400 malformed-request"),
            ("unknown version", "GET / HTTP/7.0\r\nHost: x\r\n\r\n", "400 malformed-request"),
            ("NUL in a header", "GET / HTTP/1.1\r\nHost: x\u{0}y\r\n\r\n", "400 malformed-request"),
            (
                "header block too large",
                "GET / HTTP/1.1\r\nHost: x\r\nX: \(String(repeating: "h", count: 40_000))\r\n\r\n",
                "431 request-header-fields-too-large"
            ),
        ]
        for (name, request, expected) in cases {
            let answer = try await RawClient.converse(port: live.port) { conversation in
                try await conversation.send(request)
                return try await conversation.read(through: "}")
            }
            #expect(
                InputLimitTests.summary(answer).hasSuffix(expected.split(separator: " ").last.map(String.init)!),
                "\(name): \(answer)")
            #expect(answer.hasPrefix("HTTP/1.1 \(expected.split(separator: " ")[0]) "), "\(name): \(answer)")
        }
        // A CONNECT pipelined behind a request: that one is answered, then a 501 whose connection closes (NIO frames
        // no body for an answer to CONNECT), so nothing waits for the idle time-out.
        let pipelined = try await RawClient.converse(port: live.port) { conversation in
            try await conversation.send(
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nCONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = try await conversation.read(through: "\"ok\"}")
            return try await conversation.read(through: "the end of the connection")
        }
        #expect(pipelined.hasPrefix("HTTP/1.1 501 "), "\(pipelined)")
        #expect(pipelined.lowercased().contains("connection: close"), "\(pipelined)")
        return cases.count + 1
    }
}

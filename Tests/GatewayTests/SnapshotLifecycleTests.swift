import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// Upload, list, get, download (whole, ranged, conditional) and delete over a real socket.
@Suite struct SnapshotLifecycleTests {
    @Test func everyDumpFormTravelsTheWholeRoundTrip() async throws {
        let dumps: [(name: String, bytes: [UInt8], format: String)] = [
            ("directory.tar.gz", try GeneratedDump(form: "directory", archive: "tar.gz", seed: 1).bytes, "gzip"),
            ("directory.zip", try GeneratedDump(form: "directory", archive: "zip", seed: 1).bytes, "zip"),
            ("stdout.json", try GeneratedDump(form: "stdout", seed: 1).bytes, "json"),
        ]
        // No indexing here: the snapshots stay `stored`, so the status filter below has a fixed answer.
        try await withLiveGateway(["ingest.concurrency": "0"]) { live in
            var ids: [String] = []
            for dump in dumps {
                let upload = try await live.json(
                    .POST, "/api/v1/snapshots?cluster=kind-\(dump.format)",
                    body: .bytes(ByteBuffer(bytes: dump.bytes)))
                #expect(upload.status == 202, "\(dump.name)")
                let id = try #require(upload.object["id"] as? String)
                #expect(upload.headers.first(name: "Location") == "/api/v1/snapshots/\(id)")
                #expect(upload.object["format"] as? String == dump.format)
                #expect(upload.object["status"] as? String == "stored")
                #expect(upload.object["cluster"] as? String == "kind-\(dump.format)")
                #expect(upload.object["sizeBytes"] as? Int == dump.bytes.count)
                #expect(upload.object["sha256"] as? String == sha256Hex(dump.bytes))
                #expect(upload.object["failureReason"] == nil)
                for key in ["createdAt", "updatedAt"] {
                    let text = try #require(upload.object[key] as? String)
                    #expect(
                        try Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true))
                            <= Date())
                }
                ids.append(id)

                let fetched = try await live.json(.GET, "/api/v1/snapshots/\(id)")
                #expect(fetched.status == 200)
                #expect(NSDictionary(dictionary: fetched.object) == NSDictionary(dictionary: upload.object))

                let download = try await live.send(.GET, "/api/v1/snapshots/\(id)/archive")
                #expect(download.status == 200)
                #expect(Array(download.body.readableBytesView) == dump.bytes)
                #expect(sha256Hex(download.body.readableBytesView) == sha256Hex(dump.bytes))
                #expect(download.headers.first(name: "Content-Length") == String(dump.bytes.count))
                #expect(download.headers.first(name: "ETag") == "\"\(sha256Hex(dump.bytes))\"")
                #expect(download.headers.first(name: "Accept-Ranges") == "bytes")
            }

            let list = try await live.json(.GET, "/api/v1/snapshots")
            let listed = (list.object["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(listed == ids.reversed(), "newest first")
            #expect(list.object["nextCursor"] is NSNull)

            let filtered = try await live.json(.GET, "/api/v1/snapshots?cluster=kind-zip&status=stored")
            #expect((filtered.object["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [ids[1]])

            for id in ids {
                #expect(try await live.send(.DELETE, "/api/v1/snapshots/\(id)").status == 204)
                #expect(try await live.send(.GET, "/api/v1/snapshots/\(id)").status == 404)
                #expect(try await live.send(.GET, "/api/v1/snapshots/\(id)/archive").status == 404)
                #expect(try await live.send(.DELETE, "/api/v1/snapshots/\(id)").status == 404)
            }
            #expect(live.storedFiles.isEmpty)
            let empty = try await live.json(.GET, "/api/v1/snapshots")
            #expect((empty.object["items"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func downloadsHonourRangesAndConditions() async throws {
        let bytes = try GeneratedDump(form: "directory", archive: "tar.gz", seed: 5).bytes
        try await withLiveGateway { live in
            let id = try #require(
                try await live.json(.POST, "/api/v1/snapshots?cluster=c", body: .bytes(ByteBuffer(bytes: bytes)))
                    .object["id"] as? String)
            let path = "/api/v1/snapshots/\(id)/archive"
            let etag = "\"\(sha256Hex(bytes))\""
            let size = bytes.count

            let middle = try await live.send(.GET, path, headers: [("Range", "bytes=10-99")])
            #expect(middle.status == 206)
            #expect(Array(middle.body.readableBytesView) == Array(bytes[10...99]))
            #expect(middle.headers.first(name: "Content-Range") == "bytes 10-99/\(size)")
            #expect(middle.headers.first(name: "Content-Length") == "90")

            let tail = try await live.send(.GET, path, headers: [("Range", "bytes=-100")])
            #expect(tail.status == 206 && Array(tail.body.readableBytesView) == Array(bytes[(size - 100)...]))
            let open = try await live.send(.GET, path, headers: [("Range", "bytes=\(size - 1)-")])
            #expect(open.status == 206 && Array(open.body.readableBytesView) == [bytes[size - 1]])
            let clamped = try await live.send(.GET, path, headers: [("Range", "bytes=0-99999999")])
            #expect(clamped.status == 206 && clamped.body.readableBytes == size)

            let outside = try await live.send(.GET, path, headers: [("Range", "bytes=\(size)-")])
            #expect(outside.status == 416)
            #expect(outside.headers.first(name: "Content-Range") == "bytes */\(size)")
            #expect(outside.headers.first(name: "Content-Type") == "application/problem+json")

            for ignored in ["bytes=5-1", "items=0-1", "bytes=0-1,4-5", "bytes=x-y"] {
                let whole = try await live.send(.GET, path, headers: [("Range", ignored)])
                #expect(whole.status == 200 && whole.body.readableBytes == size, "\(ignored)")
            }

            let notModified = try await live.send(.GET, path, headers: [("If-None-Match", "\"other\", \(etag)")])
            #expect(notModified.status == 304 && notModified.body.readableBytes == 0)
            #expect(notModified.headers.first(name: "ETag") == etag)

            let stale = try await live.send(.GET, path, headers: [("Range", "bytes=0-9"), ("If-Range", "\"stale\"")])
            #expect(stale.status == 200 && stale.body.readableBytes == size)
            let fresh = try await live.send(.GET, path, headers: [("Range", "bytes=0-9"), ("If-Range", etag)])
            #expect(fresh.status == 206 && fresh.body.readableBytes == 10)
        }
    }

    @Test func listsPageWithOpaqueCursors() async throws {
        try await withLiveGateway { live in
            var ids: [String] = []
            for index in 0..<7 {
                let object = try await live.json(
                    .POST, "/api/v1/snapshots?cluster=pages",
                    body: .bytes(ByteBuffer(bytes: jsonBody(100, seed: index)))
                ).object
                ids.append(try #require(object["id"] as? String))
            }
            var seen: [String] = []
            var path = "/api/v1/snapshots?limit=3"
            while true {
                let page = try await live.json(.GET, path)
                #expect(page.status == 200)
                seen += (page.object["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                guard let cursor = page.object["nextCursor"] as? String else { break }
                path = "/api/v1/snapshots?limit=3&cursor=\(cursor)"
            }
            #expect(seen == ids.reversed())
        }
    }

    @Test func anIdempotentRetryAnswersLikeTheFirstUpload() async throws {
        try await withLiveGateway { live in
            let bytes = ByteBuffer(bytes: jsonBody(50_000))
            let first = try await live.json(
                .POST, "/api/v1/snapshots?cluster=c", headers: [("Idempotency-Key", "upload-42")], body: .bytes(bytes))
            let retry = try await live.json(
                .POST, "/api/v1/snapshots?cluster=c", headers: [("Idempotency-Key", "upload-42")], body: .bytes(bytes))
            #expect(first.status == 202 && retry.status == 202)
            #expect(retry.object["id"] as? String == first.object["id"] as? String)
            #expect(retry.headers.first(name: "Location") == first.headers.first(name: "Location"))
            #expect(retry.headers.first(name: "Idempotent-Replayed") == "true")
            #expect(first.headers.first(name: "Idempotent-Replayed") == nil)

            let other = try await live.json(
                .POST, "/api/v1/snapshots?cluster=c", headers: [("Idempotency-Key", "upload-42")],
                body: .bytes(ByteBuffer(bytes: jsonBody(50_000, seed: 9))))
            #expect(other.status == 422)
            #expect(other.object["type"] as? String == "https://kubin.dev/problems/idempotency-key-reused")
            #expect(live.storedFiles.count == 1)
            let list = try await live.json(.GET, "/api/v1/snapshots").object["items"] as? [Any]
            #expect(list?.count == 1)
        }
    }
}

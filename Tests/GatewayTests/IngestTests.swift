import AsyncHTTPClient
import Foundation
import KubinModel
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// Upload → ingest → `/internal/api/v1`, over a real socket, on the shared support bundle and on generated dumps.
/// The backends a gateway test runs on: the embedded defaults, or PostgreSQL, Redis, S3 and ClickHouse.
enum Backends: String, CaseIterable, CustomTestStringConvertible {
    case embedded, production
    var testDescription: String { rawValue }

    /// Runs `body` with a gateway on these backends (a fresh PostgreSQL database for `production`).
    func withGateway(_ settings: [String: String] = [:], _ body: (LiveGateway) async throws -> Void) async throws {
        switch self {
        case .embedded: try await withLiveGateway(settings, body)
        case .production:
            let backends = [
                "cache.url": try TestServers.url("KUBIN_TEST_REDIS_URL"), "cache.maxBytes": "1MiB",
                "analytics.url": try TestServers.url("KUBIN_TEST_CLICKHOUSE_URL"),
                "storage.url": try TestServers.url("KUBIN_TEST_S3_OPEN_URL") { $0.path = "/gateway-\(UUID())" },
                "storage.accessKeyId": "open", "storage.secretAccessKey": "open",
            ]
            try await TestServers.withPostgresDatabase { location in
                let metadata = try TestServers.url("KUBIN_TEST_POSTGRES_URL") { $0.path = "/" + location.database }
                try await withLiveGateway(
                    backends.merging(["metadata.url": metadata]) { $1 }.merging(settings) { $1 }, body)
            }
        }
    }
}

@Suite struct IngestTests {
    static let sampleBundle = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
            "shared/samples/support-bundle-sbctl"
        ).path

    @Test(arguments: Backends.allCases)
    func theSupportBundleBecomesBrowsable(backends: Backends) async throws {
        let bundle = try tarGz(directory: Self.sampleBundle, as: "support-bundle")
        try await backends.withGateway { live in
            let id = try await live.upload(bundle)
            let snapshot = try await live.indexed(id)
            #expect(snapshot["status"] as? String == "ready", "\(snapshot["failureReason"] ?? "")")
            let counts = try #require(snapshot["counts"] as? [String: Int])
            // Expected figures read from the bundle's files independently of the gateway.
            let pods = try Self.items(under: "cluster-resources/pods")
            #expect(counts["pods"] == pods.count)
            #expect(counts["events"] == 67)
            #expect(counts["logStreams"] == 7)
            #expect(counts["orphanPods"] == 0)
            #expect(counts["logLines"] == (try Self.lineCount(under: "cluster-resources/pods/logs")))
            let progress = try #require(snapshot["progress"] as? [String: Int])
            #expect(progress["bytesRead"] == bundle.count)

            let base = "/internal/api/v1/snapshots/\(id)"
            let namespaces = try await live.all(base + "/namespaces", limit: 2)
            let expectedNamespaces = Set(
                pods.compactMap { ($0["metadata"] as? [String: Any])?["namespace"] as? String })
            #expect(expectedNamespaces.isSubset(of: Set(namespaces.compactMap { $0["name"] as? String })))
            #expect(namespaces.map { $0["name"] as! String } == namespaces.map { $0["name"] as! String }.sorted())
            let velero = try #require(namespaces.first { $0["name"] as? String == "velero" })
            #expect(
                (velero["pods"] as? [String: Int])?.values.reduce(0, +)
                    == pods.filter { Self.namespace($0) == "velero" }.count)
            #expect(velero["logLines"] as? Int == counts["logLines"], "every log of the bundle is in velero")

            // The crash-looping velero pod: containers, restarts, log statistics, previous log.
            let veleroPods = try await live.all(base + "/pods?namespace=velero&labelSelector=component%3Dvelero,deploy")
            let crashing = try #require(veleroPods.first { $0["name"] as? String == "velero-6996dd565b-xl44t" })
            #expect(crashing["restarts"] as? Int == 3)
            let containers = try #require(crashing["containers"] as? [[String: Any]])
            #expect(containers.filter { $0["role"] as? String == "init" }.count == 5)
            let main = try #require(containers.first { $0["role"] as? String == "main" })
            #expect(main["stateReason"] as? String == "CrashLoopBackOff")
            #expect(main["lastTerminationReason"] as? String == "Error" && main["lastExitCode"] as? Int == 1)
            let logs = try #require(crashing["logs"] as? [String: Any])
            #expect((logs["lines"] as? Int ?? 0) > 0)
            let previous = try await live.all(
                base + "/logs?namespace=velero&pod=velero-6996dd565b-xl44t&previous=true", limit: 1)
            #expect(previous.count == 3)
            #expect((previous.first?["text"] as? String)?.contains("unknown command") == true)
            #expect(previous.map { $0["line"] as? Int } == [1, 2, 3])

            // A manifest is the original JSON object.
            let manifest = try await live.send(.GET, base + "/resources/Pod/velero/velero-6996dd565b-xl44t")
            #expect(manifest.status == 200)
            let object = try JSONSerialization.jsonObject(with: Data(manifest.body.readableBytesView)) as? [String: Any]
            let original = try #require(pods.first { Self.name($0) == "velero-6996dd565b-xl44t" })
            #expect(NSDictionary(dictionary: object ?? [:]) == NSDictionary(dictionary: original))
            #expect(try await live.send(.GET, base + "/resources/Pod/velero/no-such-pod").status == 404)

            // Events newest first; Warning filter.
            let warnings = try await live.all(base + "/events?type=Warning", limit: 7)
            #expect(!warnings.isEmpty && warnings.allSatisfy { $0["type"] as? String == "Warning" })
            let times = warnings.map { ($0["lastTimestamp"] ?? $0["firstTimestamp"]) as? String ?? "" }
            #expect(times == times.sorted(by: >))
            #expect(try await live.all(base + "/events").count == 67)

            // The overview in one call; its ETag gives 304.
            let overview = try await live.send(.GET, base + "/overview")
            #expect(overview.status == 200)
            let body = try #require(
                try JSONSerialization.jsonObject(with: Data(overview.body.readableBytesView)) as? [String: Any])
            #expect((body["snapshot"] as? [String: Any])?["id"] as? String == id)
            #expect((body["podPhases"] as? [String: Int])?.values.reduce(0, +) == pods.count)
            #expect((body["mostRestarts"] as? [[String: Any]])?.first?["restarts"] as? Int ?? 0 >= 3)
            #expect(body["partial"] == nil)
            let etag = try #require(overview.headers.first(name: "ETag"))
            let again = try await live.send(.GET, base + "/overview", headers: [("If-None-Match", etag)])
            #expect(again.status == 304 && again.body.readableBytes == 0)
            #expect(again.headers.first(name: "ETag") == etag)

            // Deleting drops everything: answers, index, manifests, lines.
            #expect(try live.storedObjects().count > 1, "the archive and its manifests were stored")
            #expect(try await live.send(.DELETE, "/api/v1/snapshots/\(id)").status == 204)
            #expect(try await live.send(.GET, base + "/overview", headers: [("If-None-Match", etag)]).status == 404)
            #expect(try live.storedObjects().isEmpty)
        }
    }

    @Test(arguments: [("directory", "tar.gz"), ("directory", "zip"), ("stdout", "tar.gz")], Backends.allCases)
    func generatedDumpsAreIndexedExactly(form: (String, String), backends: Backends) async throws {
        let dump = try GeneratedDump([
            "--form", form.0, "--archive", form.1, "--namespaces", "3", "--pods-per-namespace", "6",
            "--lines-per-container", "40", "--prefix", "some/leading/folder",
        ])
        let bytes = dump.bytes
        try await backends.withGateway { live in
            let id = try await live.upload(bytes)
            let snapshot = try await live.indexed(id)
            #expect(snapshot["status"] as? String == "ready", "\(snapshot["failureReason"] ?? "")")
            let counts = try #require(snapshot["counts"] as? [String: Int])
            let figure = { (key: String) in dump.summary[key] }
            #expect(counts["pods"] == figure("pods")! + figure("orphan_pods")!)
            #expect(counts["orphanPods"] == figure("orphan_pods"))
            #expect(counts["logLines"] == figure("log_lines"))
            #expect(counts["logFetchErrors"] == figure("log_errors"))
            #expect(counts["resources"] == figure("resources"))
            #expect(counts["namespaces"] == figure("namespaces"))
            #expect(counts["events"] == 1)

            let base = "/internal/api/v1/snapshots/\(id)"
            let pods = try await live.all(base + "/pods", limit: 5)
            #expect(pods.count == counts["pods"])
            let orphans = pods.filter { $0["orphan"] as? Bool == true }
            #expect(orphans.count == figure("orphan_pods"))
            #expect(orphans.allSatisfy { ($0["name"] as? String)?.hasPrefix("ghost") == true })
            let phases = dump.phases
            for (phase, count) in phases {
                #expect(try await live.all(base + "/pods?phase=\(phase)").count == count)
            }
            let withErrors = pods.filter {
                (($0["logs"] as? [String: Any])?["fetchErrors"] as? [String: String])?.isEmpty == false
            }
            #expect(withErrors.count == figure("log_errors"))

            // Every line once, numbered, in order; CRI partial lines joined; END markers never in the text.
            let lines = try await live.all(base + "/logs", limit: 5000)
            #expect(lines.count == figure("log_lines"))
            #expect(lines.filter { $0["timestamp"] != nil }.count == figure("timestamped_lines"))
            #expect(!lines.contains { ($0["text"] as? String)?.contains("==== END") == true })
            #expect(
                lines.filter { ($0["text"] as? String)?.contains("long request") == true }.allSatisfy {
                    ($0["text"] as? String)?.hasSuffix("continues and ends") == true
                })
            let paged = try await live.all(base + "/logs", limit: 37)
            #expect(
                paged.map { "\($0["pod"]!)/\($0["container"]!)/\($0["line"]!)" }
                    == lines.map { "\($0["pod"]!)/\($0["container"]!)/\($0["line"]!)" })

            // Search ignores case; time ranges keep only timestamped lines inside them.
            let search = try await live.all(base + "/logs?q=PANIC:%20ITEM")
            #expect(
                !search.isEmpty
                    && search.allSatisfy { ($0["text"] as? String)?.lowercased().contains("panic: item") == true })
            #expect(
                search.count
                    == lines.filter { ($0["text"] as? String)?.lowercased().contains("panic: item") == true }.count)
            let window = try await live.all(base + "/logs?since=2022-11-29T20:55:10Z&until=2022-11-29T20:55:20Z")
            #expect(!window.isEmpty)
            #expect(
                window.allSatisfy {
                    ($0["timestamp"] as? String).map { $0 >= "2022-11-29T20:55:10" && $0 < "2022-11-29T20:55:20" }
                        == true
                })

            // Resources: kinds from the Lists, label selectors, name prefixes.
            let resources = try await live.all(base + "/resources", limit: 4)
            #expect(resources.count == figure("resources"))
            #expect(Set(resources.compactMap { $0["kind"] as? String }) == ["Node", "Pod", "Event"])
            let app1 = try await live.all(
                base + "/resources?kind=Pod&labelSelector=app%20in%20(app1),tier%3D%3Dbackend")
            #expect(app1.count == 6 && app1.allSatisfy { $0["namespace"] as? String == "ns-1" })
            let notApp1 = try await live.all(base + "/resources?kind=Pod&labelSelector=app!%3Dapp1")
            #expect(notApp1.count == figure("pods")! - 6)
            #expect(try await live.all(base + "/resources?kind=Node&labelSelector=!app").count == 2)
            #expect(try await live.all(base + "/resources?name=app2-").count == 6)
        }
    }

    @Test func brokenArchivesFailWithAReasonAndLeaveNoIndex() async throws {
        var link = TarWriter()
        link.add("dump/nodes.json", Array(#"{"kind":"NodeList","items":[{"metadata":{"name":"n"}}]}"#.utf8))
        link.add("dump/evil", [], type: "2", linkTarget: "/etc/shadow")
        link.finish()
        var traversal = TarWriter()
        traversal.add("dump/nodes.json", Array(#"{"kind":"NodeList","items":[{"metadata":{"name":"n"}}]}"#.utf8))
        traversal.add("dump/../../etc/passwd", Array("x".utf8))
        traversal.finish()
        var invalid = TarWriter()
        invalid.add("dump/nodes.json", Array(#"{"kind":"NodeList","items":[{"metadata":{"name":"n"}}]}"#.utf8))
        invalid.add("dump/ns/pods.json", Array(#"{"kind":"PodList","items":[{"metadata":{"name":"p"}},"#.utf8))
        invalid.finish()
        let good = try gzip(link.bytes)
        let cases: [(name: String, bytes: [UInt8], reason: String)] = [
            ("link", good, "link"),
            ("traversal", try gzip(traversal.bytes), ".."),
            ("invalid JSON", try gzip(invalid.bytes), "malformed"),
            ("truncated gzip", Array(try gzip(invalid.bytes).dropLast(40)), "truncated"),
        ]
        try await withLiveGateway { live in
            for test in cases {
                let id = try await live.upload(test.bytes)
                let snapshot = try await live.indexed(id)
                #expect(snapshot["status"] as? String == "failed", "\(test.name)")
                let reason = snapshot["failureReason"] as? String ?? ""
                #expect(reason.lowercased().contains(test.reason), "\(test.name): \(reason)")
                #expect(snapshot["counts"] == nil)
                let answer = try await live.json(.GET, "/internal/api/v1/snapshots/\(id)/resources")
                #expect(answer.status == 409, "\(test.name)")
                #expect(answer.object["type"] as? String == "https://kubin.dev/problems/snapshot-not-ready")
                #expect(
                    !live.storedFiles.contains { $0.contains(id) && $0.contains("manifests") },
                    "\(test.name): no manifests left")
            }
        }
    }

    @Test func badQueriesGetProblemsNeverA500() async throws {
        try await withLiveGateway(["ingest.concurrency": "0"]) { live in
            let stored = try await live.upload(try GeneratedDump(form: "stdout", seed: 1).bytes)
            let missing = "01a210bd-04ab-7688-b1e6-ff0dd674448a"
            let cases: [(path: String, status: Int, type: String, parameter: String?)] = [
                ("/internal/api/v1/snapshots/\(stored)/pods", 409, "snapshot-not-ready", nil),
                ("/internal/api/v1/snapshots/\(missing)/overview", 404, "not-found", nil),
                ("/internal/api/v1/snapshots/NOT-AN-ID/overview", 400, "invalid-parameter", "id"),
                ("/internal/api/v1/snapshots/\(stored)/pods?limit=0", 400, "invalid-parameter", "limit"),
                ("/internal/api/v1/snapshots/\(stored)/logs?limit=5001", 400, "invalid-parameter", "limit"),
                ("/internal/api/v1/snapshots/\(stored)/pods?cursor=garbage", 400, "invalid-parameter", "cursor"),
                ("/internal/api/v1/snapshots/\(stored)/pods?colour=red", 400, "invalid-parameter", "colour"),
                ("/internal/api/v1/snapshots/\(stored)/pods?phase=a&phase=b", 400, "invalid-parameter", "phase"),
                (
                    "/internal/api/v1/snapshots/\(stored)/pods?labelSelector=a%20in", 400, "invalid-parameter",
                    "labelSelector"
                ),
                ("/internal/api/v1/snapshots/\(stored)/logs?previous=maybe", 400, "invalid-parameter", "previous"),
                ("/internal/api/v1/snapshots/\(stored)/logs?since=yesterday", 400, "invalid-parameter", "since"),
                (
                    "/internal/api/v1/snapshots/\(stored)/logs?since=2024-01-02T00:00:00Z&until=2024-01-01T00:00:00Z",
                    400,
                    "invalid-parameter", "until"
                ),
                ("/internal/api/v1/snapshots/\(stored)/overview?limit=5", 400, "invalid-parameter", "limit"),
            ]
            for test in cases {
                let answer = try await live.json(.GET, test.path)
                #expect(answer.status == test.status, "\(test.path)")
                #expect(answer.headers.first(name: "Content-Type") == "application/problem+json", "\(test.path)")
                #expect(answer.object["type"] as? String == "https://kubin.dev/problems/\(test.type)", "\(test.path)")
                #expect(answer.object["parameter"] as? String == test.parameter, "\(test.path)")
            }
            // A cursor of one listing is refused by another.
            let resourcesCursor = IndexCursor(["Pod", "ns", "name"]).token
            let answer = try await live.json(
                .GET, "/internal/api/v1/snapshots/\(stored)/pods?cursor=\(resourcesCursor)")
            #expect(answer.status == 400 && answer.object["parameter"] as? String == "cursor")
        }
    }

    // MARK: Helpers

    static func namespace(_ object: [String: Any]) -> String? {
        (object["metadata"] as? [String: Any])?["namespace"] as? String
    }

    static func name(_ object: [String: Any]) -> String? { (object["metadata"] as? [String: Any])?["name"] as? String }

    /// The items of every List file directly under `folder` of the sample bundle.
    static func items(under folder: String) throws -> [[String: Any]] {
        try regularFiles(under: sampleBundle + "/" + folder).filter { !$0.contains("/") && $0.hasSuffix(".json") }
            .flatMap { file in
                let list = try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: sampleBundle + "/" + folder + "/" + file)))
                return (list as? [String: Any])?["items"] as? [[String: Any]] ?? []
            }
    }

    /// Lines of every file under `folder` of the sample bundle.
    static func lineCount(under folder: String) throws -> Int {
        try regularFiles(under: sampleBundle + "/" + folder).map { file in
            try String(contentsOfFile: sampleBundle + "/" + folder + "/" + file, encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false).dropLast().count
        }.reduce(0, +)
    }
}

/// `directory` packed as a `.tar.gz` whose entries start with `name/`.
func tarGz(directory: String, as name: String) throws -> [UInt8] {
    try python(
        "import io,sys,tarfile; b=io.BytesIO(); t=tarfile.open(fileobj=b, mode='w:gz'); t.add('\(directory)', arcname='\(name)'); t.close(); sys.stdout.buffer.write(b.getvalue())"
    )
}

/// `bytes` gzip-compressed.
func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
    try python("import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read()))", input: bytes)
}

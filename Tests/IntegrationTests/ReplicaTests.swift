import AsyncHTTPClient
import Clients
import Foundation
import NIOCore
import NIOHTTP1
import PostgresNIO
import TestSupport
import Testing

/// Several gateway processes over the same PostgreSQL, Redis, S3 and ClickHouse, as replicas on Kubernetes run.
@Suite(.serialized) struct ReplicaTests {
    /// The environment of a replica over the shared servers, with a data directory of its own.
    static func environment(
        database: PostgresLocation, prefix: String, lease: String = "60s"
    ) throws -> [String: String] {
        let environment = ProcessInfo.processInfo.environment
        let s3 = try TestServers.openS3()
        guard let redis = environment["KUBIN_TEST_REDIS_URL"], let clickHouse = environment["KUBIN_TEST_CLICKHOUSE_URL"]
        else { throw TestServers.Missing(variable: "KUBIN_TEST_REDIS_URL") }
        return [
            "KUBIN_HTTP_PORT": "0", "KUBIN_DATA_DIR": NSTemporaryDirectory() + "kubin-replica-" + UUID().uuidString,
            "KUBIN_METADATA_URL":
                "postgres://\(database.username)@\(database.host):\(database.port)/\(database.database)?sslmode=disable",
            "KUBIN_CACHE_URL": redis, "KUBIN_ANALYTICS_URL": clickHouse,
            "KUBIN_STORAGE_URL":
                "s3://\(s3.bucket)/\(prefix)?endpoint=\(s3.endpoint.absoluteString)&region=\(s3.region)",
            "AWS_ACCESS_KEY_ID": "open", "AWS_SECRET_ACCESS_KEY": "open", "KUBIN_INGEST_LEASE": lease,
            // Replicas trust one identity provider (development keys are per data directory).
            "KUBIN_AUTH_HS256_SECRET": TestTokens.secret,
        ]
    }

    static func json(
        _ client: HTTPClient, _ port: Int, _ path: String, headers: [(String, String)] = []
    )
        async throws -> (status: Int, headers: HTTPHeaders, object: [String: Any])
    {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        if !headers.contains(where: { $0.0 == "Authorization" }) {
            request.headers.add(name: "Authorization", value: "Bearer \(TestTokens.hs256())")
        }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        return (Int(response.status.code), response.headers, object ?? [:])
    }

    static func upload(_ client: HTTPClient, _ port: Int, _ bytes: [UInt8]) async throws -> String {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/snapshots?cluster=replicas")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(TestTokens.hs256())")
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let response = try await client.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .accepted,
            let id = (try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])?["id"]
                as? String
        else { throw TestFailure("upload refused: \(response.status)") }
        return id
    }

    @Test func anUploadThroughAIsListedByBAndQueriedThroughCWithOneSharedCache() async throws {
        let dump = try GeneratedDump(["--namespaces", "2", "--pods-per-namespace", "5"])
        let (bytes, summary) = (dump.bytes, dump.summary)
        try await TestServers.withPostgresDatabase { database in
            let prefix = "replicas-\(UUID().uuidString)"
            let replicas = try (0..<3).map { _ in
                try GatewayProcess([], environment: try Self.environment(database: database, prefix: prefix))
            }
            var ports: [Int] = []
            for replica in replicas { ports.append(try await replica.port()) }
            try await HTTPClient.withHTTPClient { client in
                let id = try await Self.upload(client, ports[0], bytes)
                try await poll("the snapshot ready, seen through B", timeout: .seconds(60)) {
                    let list = try await Self.json(client, ports[1], "/api/v1/snapshots?cluster=replicas")
                    let item = (list.object["items"] as? [[String: Any]])?.first { $0["id"] as? String == id }
                    return item?["status"] as? String == "ready"
                }
                let pods = try await Self.json(client, ports[2], "/internal/api/v1/snapshots/\(id)/pods?limit=1000")
                #expect(pods.status == 200)
                #expect((pods.object["items"] as? [Any])?.count == summary["pods"]! + summary["orphan_pods"]!)
                var archive = HTTPClientRequest(url: "http://127.0.0.1:\(ports[2])/api/v1/snapshots/\(id)/archive")
                archive.headers.add(name: "Authorization", value: "Bearer \(TestTokens.hs256())")
                let download = try await client.execute(archive, timeout: .seconds(30))
                #expect(Array(try await download.body.collect(upTo: 64 << 20).readableBytesView) == bytes)

                // B computes the overview and caches it in Redis; with the snapshot's row gone from PostgreSQL, C
                // still answers it (from the shared cache) while an uncached view of C finds nothing.
                let first = try await Self.json(client, ports[1], "/internal/api/v1/snapshots/\(id)/overview")
                #expect(first.status == 200)
                try await Self.deleteRow(id, in: database)
                let fromCache = try await Self.json(client, ports[2], "/internal/api/v1/snapshots/\(id)/overview")
                #expect(fromCache.status == 200)
                #expect(fromCache.headers.first(name: "ETag") == first.headers.first(name: "ETag"))
                let uncached = try await Self.json(client, ports[2], "/internal/api/v1/snapshots/\(id)/events?limit=3")
                #expect(uncached.status == 404)
            }
            for replica in replicas { replica.signal(SIGTERM) }
            for replica in replicas { #expect(try await replica.exitStatus() == 0) }
        }
    }

    @Test func anAPIKeyRevokedWithTheToolIsRefusedByEveryReplicaAtOnce() async throws {
        try await TestServers.withPostgresDatabase { database in
            let prefix = "keys-\(UUID().uuidString)"
            let environment = try Self.environment(database: database, prefix: prefix)
            let replicas = try (0..<3).map { _ in
                try GatewayProcess([], environment: try Self.environment(database: database, prefix: prefix))
            }
            var ports: [Int] = []
            for replica in replicas { ports.append(try await replica.port()) }
            let create = try GatewayProcess(
                ["keys", "create", "--tenant", "default", "--scopes", "snapshots:read", "--name", "replica test"],
                environment: environment)
            #expect(try await create.exitStatus() == 0, "\(create.standardError)")
            let key = try #require(create.standardOutput.split(separator: "\n").first.map(String.init))
            #expect(
                create.logLines.contains { $0["audit"] as? String == "api-key-created" } == false, "logs go to stderr")
            #expect(create.standardError.contains("api-key-created"))
            let bearer = [("Authorization", "Bearer \(key)")]
            try await HTTPClient.withHTTPClient { client in
                for port in ports {
                    #expect(try await Self.json(client, port, "/api/v1/snapshots", headers: bearer).status == 200)
                }
                let revoke = try GatewayProcess(
                    ["keys", "revoke", String(key.dropFirst(6).prefix(16))], environment: environment)
                #expect(try await revoke.exitStatus() == 0, "\(revoke.standardError)")
                for port in ports {
                    let answer = try await Self.json(client, port, "/api/v1/snapshots", headers: bearer)
                    #expect(answer.status == 401 && answer.object["reason"] as? String == "revoked-api-key")
                }
            }
            for replica in replicas { replica.signal(SIGTERM) }
            for replica in replicas { #expect(try await replica.exitStatus() == 0) }
        }
    }

    @Test func threeReplicasOnOneRedisHoldOneLimitAndFallBackWhenItDies() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        try await TestServers.withPostgresDatabase { database in
            let prefix = "limits-\(UUID().uuidString)"
            let replicas = try (0..<3).map { _ in
                try GatewayProcess(
                    [],
                    environment: try Self.environment(database: database, prefix: prefix).merging([
                        "KUBIN_CACHE_URL": "redis://\(redis.location.host):\(redis.location.port)/0",
                        "KUBIN_RATE_LIMIT_QUERY": "30/1h", "KUBIN_RATE_LIMIT_EXPECTED_REPLICAS": "3",
                    ]) { $1 })
            }
            var ports: [Int] = []
            for replica in replicas { ports.append(try await replica.port()) }
            try await HTTPClient.withHTTPClient { client in
                func statuses(_ count: Int, through ports: [Int]) async throws -> [Int: Int] {
                    var statuses: [Int: Int] = [:]
                    for index in 0..<count {
                        let answer = try await Self.json(client, ports[index % ports.count], "/api/v1/snapshots")
                        statuses[answer.status, default: 0] += 1
                    }
                    return statuses
                }
                // One limit for the three: 30 in total pass, whichever replica answers.
                let shared = try await statuses(45, through: ports)
                #expect(shared == [200: 30, 429: 15])
                // Redis dies: each replica limits alone to 30 ÷ 3, and nothing answers 5xx.
                redis.stop()
                for port in ports {
                    let alone = try await statuses(15, through: [port])
                    #expect(alone == [200: 10, 429: 5], "\(port)")
                }
            }
            for replica in replicas { replica.signal(SIGTERM) }
            for replica in replicas { #expect(try await replica.exitStatus() == 0) }
            #expect(
                replicas.contains {
                    $0.logLines.contains { ($0["message"] as? String)?.contains("limiting per instance") == true }
                })
        }
    }

    @Test func aReplicaKilledMidIngestIsReplacedWithoutDuplicates() async throws {
        let dump = try GeneratedDump([
            "--namespaces", "4", "--pods-per-namespace", "25", "--lines-per-container", "300",
        ])
        let (bytes, summary) = (dump.bytes, dump.summary)
        try await TestServers.withPostgresDatabase { database in
            let prefix = "replicas-\(UUID().uuidString)"
            let doomed = try GatewayProcess(
                [], environment: try Self.environment(database: database, prefix: prefix, lease: "2s"))
            let doomedPort = try await doomed.port()
            try await HTTPClient.withHTTPClient { client in
                let id = try await Self.upload(client, doomedPort, bytes)
                try await poll("the ingest to start") {
                    doomed.logLines.contains { $0["message"] as? String == "ingest started" }
                }
                doomed.signal(SIGKILL)
                _ = try await doomed.exitStatus()
                #expect(
                    !doomed.logLines.contains { $0["message"] as? String == "ingest finished" }, "killed mid-ingest")

                let rescuer = try GatewayProcess(
                    [], environment: try Self.environment(database: database, prefix: prefix, lease: "2s"))
                let port = try await rescuer.port()
                var snapshot: [String: Any] = [:]
                try await poll("the snapshot ready after the retry", timeout: .seconds(120)) {
                    snapshot = try await Self.json(client, port, "/api/v1/snapshots/\(id)").object
                    return snapshot["status"] as? String == "ready"
                }
                let counts = snapshot["counts"] as? [String: Int]
                #expect(counts?["logLines"] == summary["log_lines"])
                #expect(counts?["pods"] == summary["pods"]! + summary["orphan_pods"]!)
                // Every line once: the analytics store holds exactly the generator's lines.
                var lines = 0
                var cursor: String?
                repeat {
                    let page = try await Self.json(
                        client, port,
                        "/internal/api/v1/snapshots/\(id)/logs?limit=5000" + (cursor.map { "&cursor=\($0)" } ?? ""))
                    lines += (page.object["items"] as? [Any])?.count ?? 0
                    cursor = page.object["nextCursor"] as? String
                } while cursor != nil
                #expect(lines == summary["log_lines"])
                #expect(
                    rescuer.logLines.contains {
                        $0["message"] as? String == "ingest started" && $0["attempt"] as? String == "2"
                    })
                rescuer.signal(SIGTERM)
                #expect(try await rescuer.exitStatus() == 0)
            }
        }
    }

    /// Removes the snapshot's row (and, by cascade, its index) behind the gateways' backs.
    static func deleteRow(_ id: String, in database: PostgresLocation) async throws {
        let logger = Logger(label: "replica-test")
        let connection = try await PostgresConnection.connect(
            configuration: try database.connectionConfiguration(), id: 1, logger: logger)
        try await connection.query(
            PostgresQuery(
                unsafeSQL: "DELETE FROM snapshots WHERE id = $1",
                binds: {
                    var binds = PostgresBindings()
                    binds.append(id)
                    return binds
                }()), logger: logger)
        try await connection.close()
    }
}

import AsyncHTTPClient
import Clients
import Foundation
import Logging
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// No credential of a dependency ever reaches a log line, an error body, `/readyz`, or the error a failed start
/// throws, while those dependencies fail in every way that makes the gateway talk about them.
@Suite struct CredentialTests {
    @Test func failingDependenciesNeverShowTheirCredentials() async throws {
        let postgresPassword = "pg-pass-\(UUID().uuidString)"
        let redisPassword = "redis-pass-\(UUID().uuidString)"
        let s3Secret = "s3-secret-\(UUID().uuidString)"
        let secrets = [postgresPassword, redisPassword, s3Secret]
        let port = try freePort()
        let redis = try TestServers.url("KUBIN_TEST_REDIS_URL") {
            $0.password = redisPassword
            $0.port = port  // nothing listens there
        }
        let credentials = try TestServers.s3().credentials
        try await TestServers.withPostgresDatabase { database in
            // The test server trusts loopback: any password is accepted.
            let metadata = try TestServers.url("KUBIN_TEST_POSTGRES_URL") {
                $0.path = "/" + database.database
                $0.password = postgresPassword
            }
            let settings = [
                "metadata.url": metadata, "cache.url": redis, "cache.maxBytes": "1MiB",
                "storage.url": try TestServers.url("KUBIN_TEST_S3_URL"),
                // The right key id with a wrong secret: the signature-checking server refuses every request.
                "storage.accessKeyId": credentials.accessKeyID, "storage.secretAccessKey": s3Secret,
                "analytics.url": try TestServers.url("KUBIN_TEST_CLICKHOUSE_URL"),
            ]
            try await withLiveGateway(settings) { live in
                try await live.eventually("storage and cache reported down") {
                    let body = String(buffer: try await live.send(.GET, "/readyz").body)
                    return body.contains("storage") && body.contains("cache") && body.contains("\"down\"")
                }
                var bodies = [String(buffer: try await live.send(.GET, "/readyz").body)]
                let upload = try await live.send(
                    .POST, "/api/v1/snapshots?cluster=c", body: .bytes(ByteBuffer(bytes: jsonBody(5000))))
                #expect(upload.status == 503)
                bodies.append(String(buffer: upload.body))
                let listed = try await live.send(.GET, "/api/v1/snapshots")
                #expect(listed.status == 200)
                bodies.append(try await live.metricsText())
                let text = bodies.joined() + live.logs.all.joined(separator: "\n")
                #expect(text.contains("storage"), "the failures were reported")
                for secret in secrets { #expect(!text.contains(secret), "\(secret.prefix(8))… leaked") }
            }
        }
    }

    @Test func aStartRefusedByADependencyDoesNotShowItsPassword() async throws {
        let password = "ch-pass-\(UUID().uuidString)"
        let clickHouse = try TestServers.url("KUBIN_TEST_CLICKHOUSE_URL") { $0.password = password }
        let logs = LogCapture()
        let logger = Logger(label: "t") { JSONLogHandler(label: $0, level: .debug, sink: { logs.append($0) }) }
        let directory = NSTemporaryDirectory() + "kubin-credentials-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try GatewayConfiguration(raw: ["data.dir": directory, "analytics.url": clickHouse])
        do {
            try await Gateway.with(configuration: configuration, logger: logger) { _ in }
            Issue.record("ClickHouse accepted a wrong password")
        } catch {
            let text = "\(error) \(String(reflecting: error)) " + logs.all.joined()
            #expect(text.contains("ClickHouse"), "\(text)")
            #expect(!text.contains(password))
        }
    }
}

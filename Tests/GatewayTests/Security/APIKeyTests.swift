import Foundation
import KubinModel
import Logging
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// API keys: made by `kubin-gateway keys create` (``Gateway/run(_:configuration:logger:now:)``), shown once, stored
/// hashed, scoped, and refused from the next request once revoked.
@Suite struct APIKeyTests {
    @Test func aKeyWorksWithinItsScopesUntilItIsRevoked() async throws {
        try await withLiveGateway { live in
            let logs = LogCapture()
            let logger = Logger(label: "tool") { JSONLogHandler(label: $0, level: .info, sink: { logs.append($0) }) }
            let configuration = live.gateway.configuration
            let created = try await Gateway.run(
                .createKey(tenant: TenantID(validating: "acme")!, scopes: Set(Scope.allCases), name: "ci uploader"),
                configuration: configuration, logger: logger)
            let key = try #require(created.split(separator: "\n").first.map(String.init))
            #expect(key.hasPrefix("kubin_") && key.count == 6 + 16 + 1 + 64)
            let id = String(key.dropFirst(6).prefix(16))
            let reader = try await Gateway.run(
                .createKey(tenant: TenantID(validating: "acme")!, scopes: [.snapshotsRead], name: "dashboard"),
                configuration: configuration, logger: logger
            ).split(separator: "\n")[0]

            let upload = try await live.json(
                .POST, "/api/v1/snapshots?cluster=keys", headers: [("Authorization", "Bearer \(key)")],
                body: .bytes(ByteBuffer(bytes: jsonBody(2000))))
            #expect(upload.status == 202)
            let listed = try await live.json(
                .GET, "/api/v1/snapshots", headers: [("Authorization", "Bearer \(reader)")])
            #expect(
                (listed.object["items"] as? [[String: Any]])?.first?["id"] as? String == upload.object["id"] as? String)
            let refused = try await live.json(
                .POST, "/api/v1/snapshots?cluster=keys", headers: [("Authorization", "Bearer \(reader)")],
                body: .bytes(ByteBuffer(bytes: jsonBody(2000))))
            #expect(
                refused.status == 403 && refused.object["type"] as? String == "https://kubin.dev/problems/forbidden")
            // The development token's tenant (`default`) does not see acme's snapshot.
            #expect((try await live.json(.GET, "/api/v1/snapshots").object["items"] as? [Any])?.isEmpty == true)

            let list = try await Gateway.run(.listKeys(tenant: nil), configuration: configuration, logger: logger)
            #expect(list.contains(id) && list.contains("snapshots:read,snapshots:write") && list.contains("dashboard"))
            #expect(!list.contains(String(key.suffix(64))), "the secret is never shown again")
            let stored = try Self.databaseBytes(live.dataDirectory)
            #expect(!stored.contains(String(key.suffix(64))), "only the secret's hash is stored")

            let revoked = try await Gateway.run(.revokeKey(id: id), configuration: configuration, logger: logger)
            #expect(revoked.contains(id))
            let after = try await live.json(.GET, "/api/v1/snapshots", headers: [("Authorization", "Bearer \(key)")])
            AuthenticationTests.expectRefused(after, reason: "revoked-api-key", "revoked")
            #expect(
                try await live.json(.GET, "/api/v1/snapshots", headers: [("Authorization", "Bearer \(reader)")]).status
                    == 200)
            await #expect(throws: ToolError.self) {
                try await Gateway.run(.revokeKey(id: id), configuration: configuration, logger: logger)
            }
            #expect(
                try await Gateway.run(
                    .listKeys(tenant: TenantID(validating: "acme")), configuration: configuration, logger: logger
                )
                .contains("revoked "))

            // Audit: both creations and the revocation, with ids and never the key text.
            #expect(
                logs.entries(message: "API key created").map { $0["audit"] as? String } == [
                    "api-key-created", "api-key-created",
                ])
            #expect(logs.entries(message: "API key revoked").first?["key_id"] as? String == id)
            #expect(!logs.all.contains { $0.contains(String(key.suffix(64))) })
        }
    }

    @Test func malformedUnknownAndForgedKeysAreRefused() async throws {
        try await withLiveGateway { live in
            let created = try await Gateway.run(
                .createKey(tenant: .legacy, scopes: [.snapshotsRead], name: ""),
                configuration: live.gateway.configuration, logger: Logger(label: "tool"))
            let key = String(created.split(separator: "\n")[0])
            let id = key.dropFirst(6).prefix(16)
            let cases: [(String, String)] = [
                ("kubin_", "malformed-api-key"), ("kubin_abc", "malformed-api-key"),
                ("kubin_\(id)_\(String(repeating: "A", count: 64))", "malformed-api-key"),
                ("kubin_\(id)_\(String(repeating: "0", count: 63))", "malformed-api-key"),
                ("kubin_\(id)_\(String(repeating: "0", count: 64))_x", "malformed-api-key"),
                ("kubin_\(id.uppercased())_\(key.suffix(64))", "malformed-api-key"),
                ("kubin_\(String(repeating: "0", count: 16))_\(key.suffix(64))", "unknown-api-key"),
                ("kubin_\(id)_\(String(repeating: "0", count: 64))", "unknown-api-key"),
            ]
            for (text, reason) in cases {
                let answer = try await live.json(
                    .GET, "/api/v1/snapshots", headers: [("Authorization", "Bearer \(text)")])
                AuthenticationTests.expectRefused(answer, reason: reason, text)
            }
            #expect(
                try await live.send(.GET, "/api/v1/snapshots", headers: [("Authorization", "Bearer \(key)")]).status
                    == 200)
        }
    }

    /// The metadata database's files (main and write-ahead log) as text.
    static func databaseBytes(_ directory: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("metadata") }
        return try names.map {
            String(decoding: try Data(contentsOf: URL(fileURLWithPath: directory + "/" + $0)), as: UTF8.self)
        }
        .joined()
    }
}

import AsyncHTTPClient
import Crypto
import Foundation
import Gateway
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The executable as operators run it: help, refusal of bad configuration, and graceful shutdown.
@Suite(.serialized) struct ProcessTests {
    @Test func helpListsEveryKeyWithItsEnvironmentVariableAndDefault() async throws {
        let gateway = try GatewayProcess(["--help"])
        #expect(try await gateway.exitStatus() == 0)
        let help = gateway.standardOutput
        for setting in SettingsTable.rows {
            #expect(help.contains(setting.environmentVariable) && help.contains(setting.flag), "\(setting.key)")
        }
        #expect(help.contains("KUBIN_HTTP_HOST") && help.contains("default: 127.0.0.1"))
        #expect(help.contains("KUBIN_DATA_DIR") && help.contains("default: ./kubin-data"))
    }

    @Test func aBadValueStopsTheGatewayBeforeAnythingStarts() async throws {
        let directory = NSTemporaryDirectory() + "kubin-bad-" + UUID().uuidString
        let gateway = try GatewayProcess(
            ["--data-dir", directory], environment: ["KUBIN_HTTP_PORT": "http", "KUBIN_UPLOADS_MAX_BYTES": "big"])
        #expect(try await gateway.exitStatus() == 2)
        let message = gateway.standardError
        #expect(message.contains("http.port") && message.contains("KUBIN_HTTP_PORT") && message.contains("0 to 65535"))
        #expect(message.contains("uploads.maxBytes"))
        #expect(!FileManager.default.fileExists(atPath: directory), "nothing was created")
    }

    @Test func withoutAnIdentityProviderOnlyLoopbackIsServed() async throws {
        let directory = NSTemporaryDirectory() + "kubin-open-" + UUID().uuidString
        let gateway = try GatewayProcess(["--data-dir", directory, "--http-host", "0.0.0.0"])
        #expect(try await gateway.exitStatus() == 2)
        let message = gateway.standardError
        #expect(message.contains("http.host") && message.contains("KUBIN_AUTH_JWKS"), "\(message)")
        #expect(message.contains("KUBIN_AUTH_HS256_SECRET"))
        #expect(!FileManager.default.fileExists(atPath: directory), "nothing was created")
    }

    @Test func theTokenToolSignsWithTheKeyTheGatewayTrusts() async throws {
        let directory = NSTemporaryDirectory() + "kubin-token-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let gateway = try GatewayProcess(["--data-dir", directory, "--http-port", "0"])
        let port = try await gateway.port()
        #expect(try await gateway.developmentToken().split(separator: ".").count == 3)
        let tool = try GatewayProcess([
            "token", "--tenant", "acme", "--scopes", "snapshots:read", "--ttl", "10m", "--data-dir", directory,
        ])
        #expect(try await tool.exitStatus() == 0, "\(tool.standardError)")
        let token = tool.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        try await HTTPClient.withHTTPClient { client in
            for (method, expected) in [(HTTPMethod.GET, 200), (.POST, 403)] {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/snapshots?cluster=c")
                request.method = method
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                let response = try await client.execute(request, timeout: .seconds(10))
                #expect(response.status.code == expected)
            }
        }
        gateway.signal(SIGTERM)
        #expect(try await gateway.exitStatus() == 0)
        // Standard output is for log shippers: JSON lines only, the development banner included.
        let printed = gateway.standardOutput.split(separator: "\n")
        #expect(!printed.isEmpty && printed.count == gateway.logLines.count, "\(gateway.standardOutput)")
        #expect(
            gateway.logLines.contains {
                $0["message"] as? String == "development mode: no identity provider is configured"
            })

        let withProvider = try GatewayProcess(
            ["token", "--data-dir", directory], environment: ["KUBIN_AUTH_HS256_SECRET": TestTokens.secret])
        #expect(try await withProvider.exitStatus() == 1)
        #expect(withProvider.standardError.contains("development mode"))
        let badScope = try GatewayProcess(["token", "--scopes", "everything", "--data-dir", directory])
        #expect(try await badScope.exitStatus() == 2)
        #expect(badScope.standardError.contains("--scopes"))
    }

    @Test func sigtermLetsAnUploadFinishThenExitsZero() async throws {
        let directory = NSTemporaryDirectory() + "kubin-sigterm-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await HTTPClient.withHTTPClient { client in try await sigtermScenario(directory: directory, client: client)
        }
    }

    private func sigtermScenario(directory: String, client: HTTPClient) async throws {
        let gateway = try GatewayProcess([
            "--data-dir", directory, "--http-port", "0", "--shutdown-drain-delay", "2s",
            "--shutdown-grace-period", "30s", "--readiness-interval", "50ms",
        ])
        let port = try await gateway.port()
        let metricsPort = try await gateway.metricsPort()
        let token = try await gateway.developmentToken()
        let bytes = Array(String(repeating: "{\"kind\":\"List\"}\n", count: 20_000).utf8)
        let release = Gate()
        try await withThrowingTaskGroup(of: (Int, Data).self) { group in
            group.addTask {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/snapshots?cluster=shutdown")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                request.body = .stream(GatedBody(bytes, gate: release), length: .known(Int64(bytes.count)))
                let response = try await client.execute(request, timeout: .seconds(60))
                let body = try await response.body.collect(upTo: 1 << 20)
                return (Int(response.status.code), Data(body.readableBytesView))
            }
            try await poll("the upload to be admitted") {
                try await metric("gateway_uploads_in_flight", port: metricsPort, client: client) == 1
            }
            gateway.signal(SIGTERM)
            try await poll("/readyz to turn 503") {
                let response = try await client.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:\(port)/readyz"), timeout: .seconds(5))
                let body = String(buffer: try await response.body.collect(upTo: 1 << 16))
                return response.status.code == 503 && body.contains("shutting-down")
            }
            try await poll("the listener to close") { connectionIsRefused(port: port) }
            #expect(gateway.process.isRunning, "the upload is still in flight")
            release.open()
            let answer = try await group.next()
            let (status, body) = try #require(answer)
            let snapshot = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            #expect(status == 202)
            #expect(
                snapshot["sha256"] as? String == SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())
            #expect(try await gateway.exitStatus() == 0)

            // What was acknowledged is there after a restart.
            let restarted = try GatewayProcess(["--data-dir", directory, "--http-port", "0"])
            let newPort = try await restarted.port()
            let id = try #require(snapshot["id"] as? String)
            var archive = HTTPClientRequest(url: "http://127.0.0.1:\(newPort)/api/v1/snapshots/\(id)/archive")
            // The development key stays in the data directory: a token of the first run still works.
            archive.headers.add(name: "Authorization", value: "Bearer \(token)")
            let download = try await client.execute(archive, timeout: .seconds(30))
            #expect(download.status.code == 200)
            #expect(Array(try await download.body.collect(upTo: 8 << 20).readableBytesView) == bytes)
            restarted.signal(SIGINT)
            #expect(try await restarted.exitStatus() == 0)
        }
    }

    @Test func anUploadPastTheGracePeriodIsCutOffAndLeavesNothing() async throws {
        let directory = NSTemporaryDirectory() + "kubin-deadline-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await HTTPClient.withHTTPClient { client in try await deadlineScenario(directory: directory, client: client)
        }
    }

    private func deadlineScenario(directory: String, client: HTTPClient) async throws {
        let gateway = try GatewayProcess(["--data-dir", directory, "--http-port", "0", "--shutdown-grace-period", "1s"])
        let port = try await gateway.port()
        let metricsPort = try await gateway.metricsPort()
        let token = try await gateway.developmentToken()
        let release = Gate()
        defer { release.open() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/snapshots?cluster=late")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                request.body = .stream(
                    GatedBody(Array(repeating: UInt8(ascii: "{"), count: 100_000), gate: release),
                    length: .known(Int64(100_000)))
                _ = try? await client.execute(request, timeout: .seconds(60))
            }
            try await poll("the upload to be admitted") {
                try await metric("gateway_uploads_in_flight", port: metricsPort, client: client) == 1
            }
            gateway.signal(SIGTERM)
            #expect(try await gateway.exitStatus(timeout: .seconds(30)) == 0)
            release.open()
            try await group.waitForAll()
        }
        let leftovers =
            (FileManager.default.enumerator(atPath: directory + "/storage")?.compactMap { $0 as? String } ?? [])
            .filter { !["objects", "staging"].contains($0) }
        #expect(leftovers.isEmpty, "\(leftovers)")
        #expect(
            gateway.logLines.contains {
                $0["message"] as? String == "graceful shutdown deadline passed; remaining requests were cancelled"
            })
    }
}

func metric(_ sample: String, port: Int, client: HTTPClient) async throws -> Double? {
    let response = try await client.execute(
        HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(5))
    let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
    return text.split(separator: "\n").first { $0.hasPrefix(sample + " ") }.flatMap {
        Double($0.dropFirst(sample.count + 1))
    }
}

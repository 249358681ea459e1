import Foundation
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// `/healthz`, `/readyz`, `/metrics` and the access log, over a real socket.
@Suite struct OpsTests {
    @Test func readinessNamesTheDependencyThatFailed() async throws {
        try await withLiveGateway { live in
            try await live.eventually("ready") { try await live.send(.GET, "/readyz").status == 200 }
            let ready = try await live.json(.GET, "/readyz")
            let checks = try #require(ready.object["checks"] as? [String: [String: Any]])
            #expect(Set(checks.keys) == ["metadata", "storage", "analytics", "cache"])
            #expect(checks.values.allSatisfy { $0["status"] as? String == "up" })

            try FileManager.default.removeItem(atPath: live.dataDirectory + "/storage/objects")
            try await live.eventually("storage down") { try await live.send(.GET, "/readyz").status == 503 }
            let unready = try await live.json(.GET, "/readyz")
            #expect(unready.object["status"] as? String == "unready")
            let storage = try #require((unready.object["checks"] as? [String: [String: Any]])?["storage"])
            #expect(storage["status"] as? String == "down")
            // The cause, also once the storage's breaker has opened on the failed checks.
            #expect((storage["error"] as? String)?.contains("missing") == true, "\(storage)")
            let metadata = (unready.object["checks"] as? [String: [String: Any]])?["metadata"]
            #expect(metadata?["status"] as? String == "up", "\(String(describing: metadata))")
            #expect(try await live.send(.GET, "/healthz").status == 200, "liveness ignores dependencies")
        }
    }

    @Test func readinessReportsAHungCheckAsDown() async throws {
        let monitor = ReadinessMonitor(
            dependencies: [.init(name: "slow", check: { try await Task.sleep(for: .seconds(3600)) })],
            interval: .milliseconds(10), timeout: .milliseconds(50), logger: .init(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await monitor.run() }
            try await poll("the hung check reported down") {
                monitor.report().checks["slow"]?.error?.contains("no answer") == true
            }
            #expect(!monitor.report().isReady)
            monitor.startDraining()
            #expect(monitor.report().status == .shuttingDown)
            group.cancelAll()
        }
    }

    @Test func metricsCountRequestsByRouteTemplate() async throws {
        try await withLiveGateway { live in
            let upload = try await live.json(
                .POST, "/api/v1/snapshots?cluster=m", body: .bytes(ByteBuffer(bytes: jsonBody(1000))))
            let id = try #require(upload.object["id"] as? String)
            _ = try await live.send(.GET, "/api/v1/snapshots/\(id)")
            _ = try await live.send(.GET, "/api/v1/snapshots/\(id)")
            _ = try await live.send(.GET, "/api/v1/snapshots/not-an-id")
            let text = try await live.metricsText()
            #expect(text.contains(#"gateway_requests_total{method="POST",route="/api/v1/snapshots",status="202"} 1"#))
            #expect(
                text.contains(#"gateway_requests_total{method="GET",route="/api/v1/snapshots/{id}",status="200"} 2"#))
            #expect(
                text.contains(#"gateway_requests_total{method="GET",route="/api/v1/snapshots/{id}",status="400"} 1"#))
            #expect(
                text.contains(#"gateway_request_duration_seconds_count{method="GET",route="/api/v1/snapshots/{id}"} 3"#)
            )
            #expect(text.contains("# TYPE gateway_request_duration_seconds histogram"))
            #expect(text.contains("gateway_upload_bytes_total 1000"))
            #expect(text.contains("gateway_active_requests 0"), "the scrape is on the metrics listener, not counted")
            #expect(text.contains("gateway_uploads_in_flight 0"))
            #expect(!text.contains(id), "no unbounded label values")
        }
    }

    @Test func everyRequestGetsOneAccessLogLine() async throws {
        try await withLiveGateway { live in
            let body = jsonBody(5000)
            let upload = try await live.send(
                .POST, "/api/v1/snapshots?cluster=log", headers: [("X-Request-ID", "req-upload-1")],
                body: .bytes(ByteBuffer(bytes: body)))
            #expect(upload.headers.first(name: "X-Request-ID") == "req-upload-1")
            _ = try await live.send(.GET, "/nope", headers: [("X-Request-ID", "req-missing-2")])
            try await live.eventually("two access lines") {
                live.logs.entries(message: "request").filter {
                    ($0["request_id"] as? String)?.hasPrefix("req-") == true
                }
                .count == 2
            }
            let lines = live.logs.entries(message: "request")
            let uploadLine = try #require(lines.first { $0["request_id"] as? String == "req-upload-1" })
            #expect(uploadLine["method"] as? String == "POST")
            #expect(uploadLine["path"] as? String == "/api/v1/snapshots")
            #expect(uploadLine["route"] as? String == "/api/v1/snapshots")
            #expect(uploadLine["status"] as? Int == 202)
            #expect(uploadLine["bytes_in"] as? Int == body.count)
            #expect(uploadLine["bytes_out"] as? Int == upload.body.readableBytes)
            #expect((uploadLine["duration_ms"] as? Double).map { $0 >= 0 } == true)
            #expect(uploadLine["level"] as? String == "info" && uploadLine["timestamp"] is String)
            let missing = try #require(lines.first { $0["request_id"] as? String == "req-missing-2" })
            #expect(missing["status"] as? Int == 404 && missing["route"] as? String == "unmatched")
            // Other lines of the same request carry its id too.
            let stored = live.logs.entries(message: "snapshot stored")
            #expect(stored.first?["request_id"] as? String == "req-upload-1")
        }
    }
}

import Foundation
import TestSupport
import Testing

/// A store's guard seen from outside, with a real Redis killed under the gateway and started again.
@Suite struct StoreGuardTests {
    @Test func aDeadRedisOpensTheCacheBreakerReadyzSaysSoRequestsGoOnAndItClosesWhenRedisReturns() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let port = redis.location.port
        let settings = [
            "cache.url": "redis://127.0.0.1:\(port)/0", "stores.breakerMinimumCalls": "3",
            "stores.breakerCoolDown": "3s", "stores.breakerProbes": "1",
        ]
        try await withLiveGateway(settings) { live in
            try await live.eventually("readiness") { try await live.send(.GET, "/readyz").status == 200 }
            #expect(try await live.metric("gateway_circuit_breaker_state{dependency=\"cache\"}") == 0)
            redis.stop()

            // The readiness checks and the rate limiter's calls fail: the breaker opens, /readyz names it and the
            // gauge says open (polled together: under load the cool-down may pass between two looks).
            try await live.eventually("the cache's breaker to open") {
                _ = try await live.send(.GET, "/api/v1/snapshots")
                let readiness = try await live.json(.GET, "/readyz")
                let cache = (readiness.object["checks"] as? [String: Any])?["cache"] as? [String: Any]
                let gauge = try await live.metric("gateway_circuit_breaker_state{dependency=\"cache\"}")
                return readiness.status == 503 && (cache?["error"] as? String)?.contains("circuit breaker") == true
                    && gauge == 2
            }
            let rejected = try await live.metric(
                "gateway_dependency_rejected_total{dependency=\"cache\",reason=\"circuit-open\"}")
            #expect(rejected ?? 0 > 0)
            // Requests are served without Redis meanwhile.
            #expect(try await live.send(.GET, "/api/v1/snapshots").status == 200)
            #expect(!live.logs.entries(message: "circuit breaker open").isEmpty)

            let revived = try RedisServer(port: port)
            defer { revived.stop() }
            try await live.eventually("the breaker to close and readiness to return") {
                try await live.send(.GET, "/readyz").status == 200
            }
            #expect(try await live.metric("gateway_circuit_breaker_state{dependency=\"cache\"}") == 0)
            #expect(!live.logs.entries(message: "circuit breaker closed").isEmpty)
        }
    }
}

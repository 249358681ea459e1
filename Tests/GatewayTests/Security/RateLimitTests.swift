import AsyncHTTPClient
import Clients
import Foundation
import KubinModel
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// Per-principal rates per route class, with the IETF headers, on one instance (its own clock, frozen here so that
/// "a minute" is exact).
@Suite struct RateLimitTests {
    @Test func theThousandAndFirstQueryOfAMinuteGets429WithItsHeaders() async throws {
        let clock = ManualClock(start: Date())
        try await withLiveGateway(now: { clock.date }) { live in
            let signer = try #require(live.gateway.access.developmentSigner)
            // Made before the thousand requests: the signer stamps real time, the gateway's clock stays at the start,
            // and a token stamped after a slow run would be refused as issued in the future.
            let other = try await signer.token(
                subject: "someone-else", tenant: .legacy, scopes: Set(Scope.allCases), validity: .seconds(3600))
            for index in 1...1000 {
                let answer = try await live.send(.GET, "/api/v1/snapshots")
                guard answer.status == 200 else {
                    Issue.record("query \(index) got \(answer.status)")
                    return
                }
                if index == 1 || index == 1000 {
                    #expect(answer.headers.first(name: "RateLimit-Policy") == "\"query\";q=1000;w=60")
                    #expect(
                        answer.headers.first(name: "RateLimit")
                            == "\"query\";r=\(1000 - index);t=\(index == 1 ? 1 : 60)")
                }
            }
            let refused = try await live.json(
                .GET, "/internal/api/v1/snapshots/\(SnapshotID.generate(at: Date()))/pods")
            #expect(refused.status == 429)
            #expect(refused.object["type"] as? String == "https://kubin.dev/problems/rate-limited")
            #expect(refused.headers.first(name: "Retry-After") == "1")
            #expect(refused.headers.first(name: "RateLimit") == "\"query\";r=0;t=60")
            #expect(refused.headers.first(name: "RateLimit-Policy") == "\"query\";q=1000;w=60")
            #expect(try await live.metric("gateway_rate_limit_exceeded_total{class=\"query\"}") == 1)

            // Limits are per principal and per class: another caller, and this caller's uploads, are untouched.
            #expect(
                try await live.send(.GET, "/api/v1/snapshots", headers: [("Authorization", "Bearer \(other)")]).status
                    == 200)
            let upload = try await live.send(
                .POST, "/api/v1/snapshots?cluster=c", body: .bytes(ByteBuffer(bytes: jsonBody(1000))))
            #expect(upload.status == 202)
            #expect(upload.headers.first(name: "RateLimit-Policy") == "\"upload\";q=100;w=60")

            // One interval (60 ms) later one more query passes; a minute later the whole burst is back.
            clock.advance(by: .milliseconds(60))
            #expect(try await live.send(.GET, "/api/v1/snapshots").status == 200)
            #expect(try await live.send(.GET, "/api/v1/snapshots").status == 429)
            clock.advance(by: .seconds(60))
            let back = try await live.send(.GET, "/api/v1/snapshots")
            #expect(back.status == 200 && back.headers.first(name: "RateLimit") == "\"query\";r=999;t=1")
            // Probes are never limited.
            #expect(try await live.send(.GET, "/healthz").headers.first(name: "RateLimit") == nil)
        }
    }

    @Test func classesHaveTheirOwnConfiguredRates() async throws {
        let clock = ManualClock(start: Date())
        try await withLiveGateway(
            ["rateLimit.admin": "2/1h", "rateLimit.query": "off"], now: { clock.date }
        ) { live in
            let id = SnapshotID.generate(at: Date())
            #expect(try await live.send(.DELETE, "/api/v1/snapshots/\(id)").status == 404)
            #expect(try await live.send(.DELETE, "/api/v1/snapshots/\(id)").status == 404)
            let refused = try await live.send(.DELETE, "/api/v1/snapshots/\(id)")
            #expect(refused.status == 429 && refused.headers.first(name: "Retry-After") == "1800")
            #expect(try await live.metric("gateway_rate_limit_exceeded_total{class=\"admin\"}") == 1)
            let unlimited = try await live.send(.GET, "/api/v1/snapshots")
            #expect(unlimited.status == 200 && unlimited.headers.first(name: "RateLimit") == nil)
        }
    }
}

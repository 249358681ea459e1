import AsyncHTTPClient
import Foundation
import KubinModel
import NIOCore
import TestSupport
import Testing

@testable import Gateway

/// Two tenants on one gateway: each sees only its own snapshots, and another tenant's id answers exactly as an
/// unknown id does, on every route that takes one.
@Suite struct TenantIsolationTests {
    @Test func everyRouteAnswersAnotherTenantsSnapshotAsUnknown() async throws {
        let bytes = try GeneratedDump(form: "directory", seed: 1).bytes
        try await withLiveGateway { live in
            let signer = try #require(live.gateway.access.developmentSigner)
            func bearer(_ tenant: String) async throws -> (String, String) {
                let token = try await signer.token(
                    subject: "user-of-\(tenant)", tenant: TenantID(validating: tenant)!, scopes: Set(Scope.allCases),
                    validity: .seconds(3600))
                return ("Authorization", "Bearer \(token)")
            }
            let acme = try await bearer("acme")
            let globex = try await bearer("globex")

            // Both upload with the same Idempotency-Key and different bytes: keys are per tenant, so no conflict.
            let mine = try await live.json(
                .POST, "/api/v1/snapshots?cluster=shared", headers: [acme, ("Idempotency-Key", "nightly")],
                body: .bytes(ByteBuffer(bytes: bytes)))
            let theirs = try await live.json(
                .POST, "/api/v1/snapshots?cluster=shared", headers: [globex, ("Idempotency-Key", "nightly")],
                body: .bytes(ByteBuffer(bytes: try GeneratedDump(form: "directory", seed: 2).bytes)))
            #expect(mine.status == 202 && theirs.status == 202)
            let id = try #require(mine.object["id"] as? String)
            let otherID = try #require(theirs.object["id"] as? String)
            #expect(id != otherID)
            try await live.eventually("acme's snapshot indexed", timeout: .seconds(60)) {
                try await live.json(.GET, "/api/v1/snapshots/\(id)", headers: [acme]).object["status"] as? String
                    == "ready"
            }
            // Warm acme's cached answers: they must not leak through the cache either.
            #expect(
                try await live.send(.GET, "/internal/api/v1/snapshots/\(id)/overview", headers: [acme]).status == 200)

            // Lists: each tenant sees exactly its own.
            let acmeList = try await live.json(.GET, "/api/v1/snapshots", headers: [acme])
            #expect((acmeList.object["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [id])
            let globexList = try await live.json(.GET, "/api/v1/snapshots?cluster=shared", headers: [globex])
            #expect((globexList.object["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [otherID])
            #expect(
                (try await live.json(.GET, "/api/v1/snapshots", headers: [try await bearer("initech")]).object["items"]
                    as? [Any])?.isEmpty == true)

            // Every route with an id, for globex: acme's id and an unknown id get the same 404.
            let unknown = SnapshotID.generate(at: Date()).rawValue
            let routes = try live.gateway.makeRouter().routes.routes.filter { $0.path.contains("{id}") }
            #expect(routes.count >= 10)
            for route in routes {
                let path = route.path.replacingOccurrences(of: "{kind}", with: "Pod")
                    .replacingOccurrences(of: "{namespace}", with: "default")
                    .replacingOccurrences(of: "{name}", with: "x")
                for variant in [("If-None-Match", "*"), ("X-Variant", "plain")] {
                    let foreign = try await live.send(
                        .init(rawValue: route.method), path.replacingOccurrences(of: "{id}", with: id),
                        headers: [globex, variant])
                    let missing = try await live.send(
                        .init(rawValue: route.method), path.replacingOccurrences(of: "{id}", with: unknown),
                        headers: [globex, variant])
                    #expect(foreign.status == 404, "\(route.method) \(route.path) \(variant)")
                    #expect(missing.status == 404, "\(route.method) \(route.path) \(variant)")
                    if route.method != "HEAD" {
                        let foreignProblem = try Self.problem(foreign.body)
                        let missingProblem = try Self.problem(missing.body)
                        #expect(foreignProblem["type"] as? String == "https://kubin.dev/problems/not-found")
                        #expect(
                            (foreignProblem["detail"] as? String)?.replacingOccurrences(of: id, with: "ID")
                                == (missingProblem["detail"] as? String)?.replacingOccurrences(of: unknown, with: "ID"),
                            "\(route.path)")
                    }
                }
            }
            // acme's snapshot survived globex's DELETE and is whole.
            let after = try await live.json(.GET, "/api/v1/snapshots/\(id)", headers: [acme])
            #expect(after.status == 200 && after.object["status"] as? String == "ready")
            #expect(
                try await live.send(.GET, "/api/v1/snapshots/\(id)/archive", headers: [acme]).body.readableBytes
                    == bytes.count)
            #expect(try await live.send(.DELETE, "/api/v1/snapshots/\(id)", headers: [acme]).status == 204)
            #expect(try await live.send(.GET, "/api/v1/snapshots/\(otherID)", headers: [globex]).status == 200)
        }
    }

    static func problem(_ body: ByteBuffer) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] ?? [:]
    }
}

import AsyncHTTPClient
import Clients
import Foundation
import KubinModel
import Logging
import NIOCore
import NIOHTTP1
import Orchestrators
import Synchronization
import TestSupport
import Testing

@testable import Gateway

/// Tokens made by Python's `cryptography` (see make_tokens.py) and the JWKS of their keys.
struct TokenCorpus {
    static let issuer = "https://id.kubin.test"
    static let audience = "kubin-gateway"
    static let secret = TestTokens.secret

    let jwksPath: String
    let tokens: [String: String]

    subscript(_ name: String) -> String { tokens[name]! }

    init() throws {
        jwksPath = NSTemporaryDirectory() + "jwks-" + UUID().uuidString + ".json"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "make_tokens.py")
        let output = try python(
            "import runpy, sys; sys.argv = ['make_tokens.py', '\(jwksPath)', '\(Self.secret)', '\(Self.issuer)', "
                + "'\(Self.audience)']; runpy.run_path('\(script.path)', run_name='__main__')")
        tokens = try JSONSerialization.jsonObject(with: Data(output)) as? [String: String] ?? [:]
    }

    /// The settings of a gateway that trusts this corpus's JWKS and the shared secret, with its issuer and audience.
    var settings: [String: String] {
        [
            "auth.jwks": jwksPath, "auth.hs256.secret": Self.secret, "auth.issuer": Self.issuer,
            "auth.audience": Self.audience,
        ]
    }
}

@Suite struct AuthenticationTests {
    /// Tokens refused with 401, and the reason each must carry.
    static let refusals: [(token: String, reason: String)] = [
        ("alg-none", "alg-none"), ("alg-None", "alg-none"), ("alg-NONE-signed", "alg-none"),
        ("alg-HS512", "unsupported-algorithm"), ("alg-RS512", "unsupported-algorithm"),
        ("alg-missing", "malformed-token"), ("alg-not-string", "malformed-token"),
        ("hs256-with-rsa-public-key", "algorithm-mismatch"), ("rs256-naming-ec-key", "algorithm-mismatch"),
        ("es256-naming-rsa-key", "algorithm-mismatch"), ("ps256-naming-rs256-key", "algorithm-mismatch"),
        ("rs256-naming-ps256-key", "algorithm-mismatch"), ("eddsa-naming-ec-key", "algorithm-mismatch"),
        ("rs256-without-kid", "missing-kid"), ("unknown-kid", "unknown-kid"), ("encryption-key-kid", "unknown-kid"),
        ("kid-not-string", "malformed-token"), ("hs256-wrong-secret", "bad-signature"),
        ("rs256-wrong-key", "bad-signature"), ("tampered-payload", "bad-signature"),
        ("tampered-signature", "bad-signature"), ("signature-empty", "bad-signature"),
        ("signature-of-other-token", "bad-signature"), ("truncated-mid-signature", "bad-signature"),
        ("expired", "expired"), ("expired-just-past-leeway", "expired"), ("missing-exp", "missing-exp"),
        ("exp-absurd", "lifetime-too-long"), ("exp-in-a-year", "lifetime-too-long"),
        ("crit-unknown", "unsupported-critical-header"), ("crit-empty", "unsupported-critical-header"),
        ("exp-not-number", "malformed-token"), ("nbf-future", "not-yet-valid"), ("nbf-not-number", "malformed-token"),
        ("iat-future", "not-yet-valid"), ("wrong-issuer", "wrong-issuer"), ("missing-issuer", "wrong-issuer"),
        ("wrong-audience", "wrong-audience"), ("audience-list-without-ours", "wrong-audience"),
        ("missing-audience", "wrong-audience"), ("missing-tenant", "missing-tenant"),
        ("tenant-not-string", "invalid-tenant"), ("tenant-with-slash", "invalid-tenant"),
        ("tenant-empty", "invalid-tenant"), ("truncated-two-parts", "malformed-token"),
        ("four-parts", "malformed-token"), ("one-part", "malformed-token"), ("empty-parts", "malformed-token"),
        ("header-not-base64url", "malformed-token"), ("payload-not-base64url", "malformed-token"),
        ("signature-not-base64url", "malformed-token"), ("header-not-json", "malformed-token"),
        ("payload-not-json", "malformed-token"), ("payload-array", "malformed-token"),
        ("header-impossible-length", "malformed-token"), ("oversized", "token-too-large"),
        ("unicode", "malformed-token"),
    ]

    /// Tokens that open `GET /api/v1/snapshots`.
    static let accepted = [
        "rs256", "rs256-second-key", "ps256", "es256", "eddsa", "hs256", "audience-in-list", "scp-array",
        "exp-within-leeway", "nbf-within-leeway", "read-only", "es256-high-s",
    ]

    static func expectRefused(
        _ answer: (status: Int, headers: HTTPHeaders, object: [String: Any]), reason: String, _ comment: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(answer.status == 401, "\(comment)", sourceLocation: sourceLocation)
        #expect(
            answer.object["type"] as? String == "https://kubin.dev/problems/unauthenticated", "\(comment)",
            sourceLocation: sourceLocation)
        #expect(answer.object["reason"] as? String == reason, "\(comment)", sourceLocation: sourceLocation)
        #expect(
            answer.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true, "\(comment)",
            sourceLocation: sourceLocation)
        #expect(
            answer.headers.first(name: "Content-Type") == "application/problem+json", "\(comment)",
            sourceLocation: sourceLocation)
    }

    @Test func tokensOfEveryAlgorithmAreAcceptedAndEveryRefusalSaysWhy() async throws {
        let corpus = try TokenCorpus()
        #expect(corpus.tokens.count >= Self.refusals.count + Self.accepted.count)
        try await withLiveGateway(corpus.settings) { (live: LiveGateway) async throws in
            for name in Self.accepted {
                let answer = try await live.json(
                    .GET, "/api/v1/snapshots", headers: [("Authorization", "Bearer \(corpus[name])")])
                #expect(answer.status == 200, "\(name): \(answer.object)")
            }
            for (name, reason) in Self.refusals {
                let answer = try await live.json(
                    .GET, "/api/v1/snapshots", headers: [("Authorization", "Bearer \(corpus[name])")])
                Self.expectRefused(answer, reason: reason, name)
            }
            // Each refusal is one audit line with its reason, and no line holds any token.
            let audit = live.logs.entries(message: "authentication failed")
            #expect(audit.count == Self.refusals.count)
            #expect(audit.allSatisfy { $0["audit"] as? String == "authentication-failed" })
            #expect(
                Dictionary(grouping: audit, by: { $0["reason"] as? String ?? "" }).mapValues(\.count)
                    == Dictionary(grouping: Self.refusals, by: \.reason).mapValues(\.count))
            for line in live.logs.all {
                #expect(!corpus.tokens.values.contains { $0.count > 20 && line.contains($0) })
            }
            #expect(
                try await live.metric("gateway_authentication_failures_total{reason=\"alg-none\"}") == 3)
        }
    }

    /// "status type" of the answer to `token`, the type without its prefix.
    static func status(
        _ live: LiveGateway, _ corpus: TokenCorpus, _ method: HTTPMethod, _ path: String, _ token: String
    ) async throws -> String {
        let answer = try await live.json(method, path, headers: [("Authorization", "Bearer \(corpus[token])")])
        let type = (answer.object["type"] as? String)?.replacingOccurrences(of: "https://kubin.dev/problems/", with: "")
        return "\(answer.status) \(type ?? "-")"
    }

    @Test func scopesDecideWhatACallerMayDo() async throws {
        let corpus = try TokenCorpus()
        try await withLiveGateway(corpus.settings) { (live: LiveGateway) async throws in
            let forbidden = "403 forbidden"
            let id = "0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1f"
            #expect(try await Self.status(live, corpus, .GET, "/api/v1/snapshots", "read-only") == "200 -")
            #expect(try await Self.status(live, corpus, .GET, "/api/v1/snapshots", "scp-array") == "200 -")
            #expect(try await Self.status(live, corpus, .POST, "/api/v1/snapshots?cluster=c", "read-only") == forbidden)
            #expect(try await Self.status(live, corpus, .DELETE, "/api/v1/snapshots/\(id)", "read-only") == forbidden)
            #expect(try await Self.status(live, corpus, .GET, "/api/v1/snapshots", "write-only") == forbidden)
            #expect(
                try await Self.status(live, corpus, .GET, "/internal/api/v1/snapshots/\(id)/pods", "write-only")
                    == forbidden)
            #expect(try await Self.status(live, corpus, .GET, "/api/v1/snapshots", "no-scope") == forbidden)
            #expect(
                try await Self.status(live, corpus, .DELETE, "/api/v1/snapshots/\(id)", "write-only") == "404 not-found"
            )
            // The probes and the contract stay open.
            #expect(try await live.send(.GET, "/healthz", authorized: false).status == 200)
            #expect(try await live.send(.GET, "/openapi.yaml", authorized: false).status == 200)
        }
    }

    @Test func theAuthorizationHeaderMustHoldOneBearerCredential() async throws {
        let corpus = try TokenCorpus()
        try await withLiveGateway(corpus.settings) { (live: LiveGateway) async throws in
            let good = corpus["es256"]
            let cases: [(headers: [(String, String)], reason: String?)] = [
                ([], "missing-credentials"),
                ([("Authorization", "Basic dXNlcjpwYXNzd29yZA==")], "unsupported-scheme"),
                ([("Authorization", "Bearer")], "unsupported-scheme"),
                ([("Authorization", "Bearer ")], "unsupported-scheme"),
                ([("Authorization", "Token \(good)")], "unsupported-scheme"),
                ([("Authorization", good)], "unsupported-scheme"),
                ([("Authorization", "Bearer \(good) trailing")], "malformed-token"),
                ([("Authorization", "Bearer \(good)"), ("Authorization", "Bearer \(good)")], "repeated-authorization"),
                ([("Authorization", "bearer \(good)")], nil), ([("Authorization", "BEARER \(good)")], nil),
                ([("Authorization", "Bearer   \(good)")], nil),
            ]
            for (headers, reason) in cases {
                let answer = try await live.json(.GET, "/api/v1/snapshots", headers: headers, authorized: false)
                if let reason {
                    Self.expectRefused(answer, reason: reason, "\(headers.map(\.1))")
                } else {
                    #expect(answer.status == 200, "\(headers.map(\.1))")
                }
            }
        }
    }

    @Test func aJWKSOverHTTPSIsRefetchedForAnUnknownKidAtMostOncePerInterval() async throws {
        let corpus = try TokenCorpus()
        let original = try Data(contentsOf: URL(fileURLWithPath: corpus.jwksPath))
        let served = NSTemporaryDirectory() + "served-jwks-" + UUID().uuidString + ".json"
        // The served JWKS starts without the EC key: tokens naming it are of a key the gateway does not know yet.
        var document = try JSONSerialization.jsonObject(with: original) as! [String: Any]
        let keys = document["keys"] as! [[String: Any]]
        document["keys"] = keys.filter { $0["kid"] as? String != "ec" }
        try JSONSerialization.data(withJSONObject: document).write(to: URL(fileURLWithPath: served))
        let server = try JWKSServer(serving: served)
        let clock = ManualClock(start: Date())
        var fetches = 0
        do {
            try await withLiveGateway(
                corpus.settings.merging([
                    "auth.jwks": server.url, "auth.jwksCAFile": server.certificatePath, "auth.jwksMinRefresh": "30s",
                ]) { $1 }, now: { clock.date }
            ) { live in
                func get(_ token: String) async throws -> (status: Int, headers: HTTPHeaders, object: [String: Any]) {
                    try await live.json(.GET, "/api/v1/snapshots", headers: [("Authorization", "Bearer \(token)")])
                }
                #expect(try await get(corpus["rs256"]).status == 200)
                // The key appears (rotation) but the last fetch was under 30 s ago: no refetch, however many tokens.
                try original.write(to: URL(fileURLWithPath: served))
                for _ in 0..<20 { Self.expectRefused(try await get(corpus["es256"]), reason: "unknown-kid", "early") }
                #expect(live.logs.entries(message: "JWKS loaded").count == 1)
                // Once the interval has passed, an unknown kid fetches the JWKS again and the token is accepted.
                clock.advance(by: .seconds(31))
                #expect(try await get(corpus["es256"]).status == 200)
                #expect(live.logs.entries(message: "JWKS loaded").count == 2)
            }
        } catch {
            _ = server.stop()
            throw error
        }
        fetches = server.stop()
        #expect(fetches == 2, "one fetch at start, one for the new kid")
    }

    @Test func theJWKSIsReloadedOnATimer() async throws {
        let corpus = try TokenCorpus()
        let original = try Data(contentsOf: URL(fileURLWithPath: corpus.jwksPath))
        try Data(#"{"keys": []}"#.utf8).write(to: URL(fileURLWithPath: corpus.jwksPath))
        try await withLiveGateway(
            corpus.settings.merging(["auth.jwksRefresh": "1s", "auth.jwksMinRefresh": "1h"]) { $1 }
        ) { live in
            let token = [("Authorization", "Bearer \(corpus["ps256"])")]
            Self.expectRefused(
                try await live.json(.GET, "/api/v1/snapshots", headers: token), reason: "unknown-kid", "empty")
            try original.write(to: URL(fileURLWithPath: corpus.jwksPath))
            try await live.eventually("the timer's reload", timeout: .seconds(10)) {
                try await live.send(.GET, "/api/v1/snapshots", headers: token).status == 200
            }
        }
    }

    @Test func disabledAuthenticationServesEveryCallerAsTheDefaultTenantOnLoopbackOnly() async throws {
        try await withLiveGateway(["auth.disabled": "true"]) { live in
            let upload = try await live.json(
                .POST, "/api/v1/snapshots?cluster=c", body: .bytes(ByteBuffer(bytes: jsonBody(500))),
                authorized: false)
            #expect(upload.status == 202)
            let listed = try await live.json(.GET, "/api/v1/snapshots", authorized: false)
            #expect((listed.object["items"] as? [Any])?.count == 1)
            // The development token's tenant is the same: what was uploaded anonymously is its.
            #expect((try await live.json(.GET, "/api/v1/snapshots").object["items"] as? [Any])?.count == 1)
        }
        do {
            _ = try await GatewayConfiguration.load(
                arguments: ["kubin-gateway"],
                environment: [
                    "KUBIN_AUTH_DISABLED": "true", "KUBIN_HTTP_HOST": "0.0.0.0",
                    "KUBIN_AUTH_HS256_SECRET": TokenCorpus.secret,
                ])
            Issue.record("authentication was disabled on a public address")
        } catch {
            #expect(error.problems.map(\.key) == ["auth.disabled"])
        }
    }

    @Test func aBadJWKSStopsTheStart() async throws {
        let path = NSTemporaryDirectory() + "bad-jwks-" + UUID().uuidString
        try Data("not json".utf8).write(to: URL(fileURLWithPath: path))
        await #expect(throws: (any Error).self) {
            try await withLiveGateway(["auth.jwks": path]) { _ in }
        }
        await #expect(throws: (any Error).self) {
            try await withLiveGateway(["auth.jwks": path + ".missing"]) { _ in }
        }
    }

    @Test func verifiedTokensAreRememberedOnlyUntilTheyExpire() async throws {
        let corpus = try TokenCorpus()
        let original = try Data(contentsOf: URL(fileURLWithPath: corpus.jwksPath))
        let clock = ManualClock(start: Date())
        let keys = KeySet(
            source: .file(corpus.jwksPath), fixed: [], minimumRefreshInterval: .zero, logger: Logger(label: "t"))
        try await keys.refresh()
        let directory = NSTemporaryDirectory() + "auth-unit-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let metadata = try await SQLiteMetadataStore.open(path: directory + "/m.sqlite", logger: Logger(label: "t"))
        try await closing(metadata.close) {
            let authenticator = Authenticator(
                verifier: TokenVerifier(
                    keys: keys, rules: .init(issuer: TokenCorpus.issuer, audience: TokenCorpus.audience, leeway: .zero)),
                apiKeys: APIKeyRegistry(metadata: metadata), leeway: .zero, now: { clock.date })
            let token = ["Bearer \(corpus["es256"])"]
            guard case .success(let principal) = try await authenticator.authenticate(token) else {
                Issue.record("a good token was refused")
                return
            }
            #expect(principal.tenant.rawValue == "acme" && principal.scopes == Set(Scope.allCases))
            // With every key gone, the remembered token still passes (no signature check) but no other token does.
            try Data(#"{"keys": []}"#.utf8).write(to: URL(fileURLWithPath: corpus.jwksPath))
            try await keys.refresh()
            guard case .success = try await authenticator.authenticate(token) else {
                Issue.record("a verified token was checked again")
                return
            }
            guard case .failure(let refusal) = try await authenticator.authenticate(["Bearer \(corpus["eddsa"])"])
            else {
                Issue.record("a token of a removed key was accepted")
                return
            }
            #expect(refusal.failure.reason == "unknown-kid")
            // Past its exp (600 s after it was made) the remembered token is verified again, and refused.
            try original.write(to: URL(fileURLWithPath: corpus.jwksPath))
            try await keys.refresh()
            clock.advance(by: .seconds(601))
            guard case .failure(let expired) = try await authenticator.authenticate(token) else {
                Issue.record("an expired token was accepted from memory")
                return
            }
            #expect(expired.failure.reason == "expired")
        }
    }
}

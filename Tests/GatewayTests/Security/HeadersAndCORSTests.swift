import AsyncHTTPClient
import Foundation
import NIOHTTP1
import TestSupport
import Testing

@testable import Gateway

/// Security headers on every answer, `private` on authenticated ones, and CORS for the configured origins only.
@Suite struct HeadersAndCORSTests {
    static let ui = "https://ui.example.com"

    @Test func everyAnswerCarriesTheSecurityHeaders() async throws {
        try await withLiveGateway { live in
            let id = "0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1f"
            let cases: [(HTTPMethod, String, Bool, Int, String?)] = [
                (.GET, "/healthz", true, 200, nil), (.GET, "/openapi.yaml", false, 200, nil),
                (.GET, "/api/v1/snapshots", true, 200, "private"), (.GET, "/api/v1/snapshots", false, 401, "private"),
                (.GET, "/api/v1/snapshots/\(id)", true, 404, "private"),
                (.PUT, "/api/v1/snapshots", true, 405, "private"),
                (.GET, "/internal/api/v1/snapshots/\(id)/overview", true, 404, "private"),
                (.GET, "/nope", true, 404, nil),
            ]
            for (method, path, authorized, status, cacheControl) in cases {
                let answer = try await live.send(method, path, authorized: authorized)
                let headers = answer.headers
                #expect(answer.status == status, "\(method) \(path)")
                #expect(headers.first(name: "X-Content-Type-Options") == "nosniff", "\(path)")
                #expect(headers.first(name: "X-Frame-Options") == "DENY", "\(path)")
                #expect(headers.first(name: "Referrer-Policy") == "no-referrer", "\(path)")
                #expect(headers.first(name: "Content-Security-Policy")?.contains("default-src 'none'") == true)
                #expect(!headers.contains(name: "Strict-Transport-Security"), "HSTS only under TLS")
                if let cacheControl {
                    #expect(headers.first(name: "Cache-Control")?.hasPrefix(cacheControl) == true, "\(path)")
                } else {
                    #expect(headers.first(name: "Cache-Control")?.contains("private") != true, "\(path)")
                }
            }
        }
    }

    @Test func onlyConfiguredOriginsGetCORSHeaders() async throws {
        try await withLiveGateway(["cors.allowedOrigins": Self.ui + ",http://localhost:3000"]) { live in
            let preflight = [
                ("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "authorization"),
            ]
            let allowed = try await live.send(
                .OPTIONS, "/internal/api/v1/snapshots/x/pods", headers: [("Origin", Self.ui)] + preflight,
                authorized: false)
            #expect(allowed.status == 204)
            #expect(allowed.headers.first(name: "Access-Control-Allow-Origin") == Self.ui)
            #expect(allowed.headers.first(name: "Access-Control-Allow-Methods") == "GET, HEAD, POST, DELETE")
            #expect(allowed.headers.first(name: "Access-Control-Allow-Headers")?.contains("Authorization") == true)
            #expect(allowed.headers.first(name: "Access-Control-Max-Age") == "600")
            #expect(allowed.headers.first(name: "Vary") == "Origin")

            for origin in [
                "https://evil.example", "null", "https://ui.example.com.evil.example", "http://ui.example.com",
            ] {
                let refused = try await live.send(
                    .OPTIONS, "/api/v1/snapshots", headers: [("Origin", origin)] + preflight, authorized: false)
                #expect(refused.status == 204, "\(origin)")
                #expect(!refused.headers.contains { $0.name.lowercased().hasPrefix("access-control-") }, "\(origin)")
                let get = try await live.send(.GET, "/api/v1/snapshots", headers: [("Origin", origin)])
                #expect(get.status == 200)
                #expect(!get.headers.contains { $0.name.lowercased().hasPrefix("access-control-") }, "\(origin)")
            }

            let get = try await live.send(.GET, "/api/v1/snapshots", headers: [("Origin", "http://localhost:3000")])
            #expect(get.headers.first(name: "Access-Control-Allow-Origin") == "http://localhost:3000")
            #expect(get.headers.first(name: "Access-Control-Expose-Headers")?.contains("ETag") == true)
            // The UI can read the problem of a refused request too.
            let refused = try await live.send(
                .GET, "/api/v1/snapshots", headers: [("Origin", Self.ui)], authorized: false)
            #expect(refused.status == 401 && refused.headers.first(name: "Access-Control-Allow-Origin") == Self.ui)
            // OPTIONS that is not a preflight is an ordinary request: no route serves it.
            let options = try await live.send(.OPTIONS, "/api/v1/snapshots", headers: [("Origin", Self.ui)])
            #expect(options.status == 405)
        }
    }

    @Test func withoutConfiguredOriginsNoAnswerHasCORSHeaders() async throws {
        try await withLiveGateway { live in
            let answer = try await live.send(
                .OPTIONS, "/api/v1/snapshots",
                headers: [("Origin", Self.ui), ("Access-Control-Request-Method", "POST")], authorized: false)
            #expect(answer.status == 204)
            #expect(!answer.headers.contains { $0.name.lowercased().hasPrefix("access-control-") })
        }
    }

    @Test func originsAreCheckedWhenTheConfigurationIsRead() async throws {
        guard
            case .run(let configuration) = try await GatewayConfiguration.load(
                arguments: ["kubin-gateway"],
                environment: ["KUBIN_CORS_ALLOWED_ORIGINS": "https://a.example, http://localhost:3000"])
        else { throw TestFailure("not a run invocation") }
        #expect(configuration.cors.allowedOrigins == ["https://a.example", "http://localhost:3000"])
        for bad in ["ui.example.com", "https://ui.example.com/", "https://ui.example.com/app", "ftp://x", "https://"] {
            let problems: [ConfigurationError.Problem]
            do {
                _ = try await GatewayConfiguration.load(
                    arguments: ["kubin-gateway"],
                    environment: ["KUBIN_CORS_ALLOWED_ORIGINS": "https://ok.example, \(bad)"])
                problems = []
            } catch { problems = error.problems }
            #expect(problems.map(\.key) == ["cors.allowedOrigins"], "\(bad)")
        }
    }
}

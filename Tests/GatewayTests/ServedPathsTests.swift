import Hummingbird
import Testing

@testable import Gateway

@Suite struct ServedPathsTests {
    private static func paths(_ templates: [String]) -> ServedPaths {
        let router = Router(context: GatewayRequestContext.self)
        for template in templates {
            router.get(RouterPath(template)) { _, _ in "" }
        }
        let table = RouteTable()
        table.record(router)
        return table.paths
    }

    @Test func aPathIsServedWhenATemplateMatchesItSegmentBySegment() {
        let paths = Self.paths(["/api/v1/snapshots", "/api/v1/snapshots/{id}", "/healthz"])
        #expect(paths.contains("/api/v1/snapshots"))
        #expect(paths.contains("/api/v1/snapshots/42"))
        #expect(paths.contains("//api/v1/snapshots/"))
        #expect(paths.contains("/healthz"))
        #expect(!paths.contains("/api/v1/snapshots/42/archive"))
        #expect(!paths.contains("/api/v1/reports"))
        #expect(!paths.contains("/reports/healthz"))
        #expect(!paths.contains("/"))
    }

    @Test func aTemplateThatStartsWithAParameterIsTriedForEveryPath() {
        let paths = Self.paths(["/{tenant}/status", "/healthz"])
        #expect(paths.contains("/acme/status"))
        #expect(paths.contains("/healthz"))
        #expect(!paths.contains("/acme/other"))
    }
}

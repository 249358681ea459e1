import Foundation
import Orchestrators
import Testing

@testable import Gateway

@Suite struct RoutingTableTests {
    static let complete = """
        upstreams:
          reports:
            instances:
              - url: http://127.0.0.1:9001
                weight: 3
              - url: http://127.0.0.1:9002
            balancer: weighted
            healthCheck: {path: /healthz, interval: 2s, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}
            outlierDetection: {consecutiveFailures: 5, baseEjectionTime: 30s, maxEjectedPercent: 50}
            timeouts: {connect: 1s, request: 30s}
          logs:
            dns: logs.kubin.svc.cluster.local:8080
            balancer: least-request
          search:
            dns: _http._tcp.search.kubin.svc.cluster.local
        routes:
          - name: reports
            pathPrefix: /api/v1/reports
            methods: [GET, POST]
            upstream: reports
            rewritePrefix: /v1
            auth: required
            scopes: [reports:read]
            rateLimit: query
            websocket: true
          - name: logs
            pathPrefix: /api/v1/logs/stream
            upstream: logs
            auth: none
            rateLimit: "off"
          - name: search
            pathPrefix: /api/v1
            upstream: search
        """

    @Test func theIssuesExampleParsesToWhatItSays() throws {
        let table = try RoutingTable.parse(Self.complete)
        let reports = try #require(table.upstreams["reports"])
        #expect(
            reports.discovery
                == .instances([
                    .init(address: "http://127.0.0.1:9001", weight: 3), .init(address: "http://127.0.0.1:9002"),
                ]))
        #expect(reports.balancer == .weighted)
        #expect(
            reports.healthCheck
                == HealthCheckPolicy(
                    path: "/healthz", interval: .seconds(2), timeout: .seconds(1), healthyThreshold: 2,
                    unhealthyThreshold: 2))
        #expect(reports.outlierDetection.consecutiveFailures == 5)
        #expect(reports.requestTimeout == .seconds(30))
        #expect(reports.idleTimeout == .seconds(60))
        #expect(reports.retry == RetryPolicy())
        #expect(reports.maxConnectionsPerInstance == nil)
        let tuned = try RoutingTable.parse(
            "upstreams: {a: {instances: [{url: 'http://h:1'}], maxConnectionsPerInstance: 8, "
                + "retries: {attempts: 3, backoff: 10ms, maxBackoff: 1s, budgetPercent: 50}}}\nroutes: []")
        #expect(tuned.upstreams["a"]?.maxConnectionsPerInstance == 8)
        #expect(
            tuned.upstreams["a"]?.retry
                == RetryPolicy(attempts: 3, backoff: .milliseconds(10), maxBackoff: .seconds(1), budgetRatio: 0.5))
        #expect(
            table.upstreams["logs"]?.discovery
                == .addresses(host: "logs.kubin.svc.cluster.local", port: 8080, scheme: "http", refresh: .seconds(10)))
        #expect(
            table.upstreams["search"]?.discovery
                == .service(name: "_http._tcp.search.kubin.svc.cluster.local", scheme: "http", refresh: .seconds(10)))
        #expect(table.routes.map(\.name) == ["logs", "reports", "search"])
        let route = try #require(table.routes.first { $0.name == "reports" })
        #expect(route.methods == ["GET", "POST"])
        #expect(route.scopes == ["reports:read"])
        #expect(route.rateLimit == .routeClass(.query))
        #expect(route.isWebSocket)
        #expect(table.routes.first { $0.name == "logs" }?.rateLimit == .off)
        #expect(table.routes.first { $0.name == "logs" }?.auth == RoutingTable.Route.Auth.none)
    }

    @Test func jsonIsReadToo() throws {
        let table = try RoutingTable.parse(
            #"{"upstreams": {"a": {"instances": [{"url": "http://[::1]:81"}]}}, "routes": [{"name": "a", "pathPrefix": "/a", "upstream": "a"}]}"#
        )
        #expect(table.upstreams["a"]?.discovery == .instances([.init(address: "http://[::1]:81")]))
    }

    @Test func theLongestPrefixWinsAndOnlyWholeSegmentsMatch() throws {
        let table = try RoutingTable.parse(Self.complete)
        #expect(table.route(for: "/api/v1/reports")?.name == "reports")
        #expect(table.route(for: "/api/v1/reports/7/pdf")?.name == "reports")
        #expect(table.route(for: "/api/v1/reportsX")?.name == "search")
        #expect(table.route(for: "/api/v1/logs/stream/x")?.name == "logs")
        #expect(table.route(for: "/api/v2") == nil)
        #expect(table.route(for: "/api/v1")?.name == "search")
    }

    @Test func rewritesReplaceThePrefixOnly() throws {
        let table = try RoutingTable.parse(Self.complete)
        let route = try #require(table.route(for: "/api/v1/reports"))
        #expect(route.forwardedPath(for: "/api/v1/reports/7") == "/v1/7")
        #expect(route.forwardedPath(for: "/api/v1/reports") == "/v1")
        var root = route
        root.rewritePrefix = "/"
        #expect(root.forwardedPath(for: "/api/v1/reports/7") == "/7")
        #expect(root.forwardedPath(for: "/api/v1/reports") == "/")
        root.rewritePrefix = nil
        #expect(root.forwardedPath(for: "/api/v1/reports/7?x") == "/api/v1/reports/7?x")
    }

    /// Each bad table is refused with a problem naming the entry at fault.
    @Test(arguments: [
        (
            "upstreams: {a: {instances: [{url: http://h:1}]}}\nroutes: [{name: a, pathPrefix: /a, upstream: b}]",
            "routes[0].upstream: 'b' is not an upstream"
        ),
        (
            "upstreams: {a: {instances: [{url: http://h:1}], balancer: fastest}}\nroutes: []",
            "upstreams.a.balancer: 'fastest' is not one of round-robin, weighted, least-request, random"
        ),
        ("upstreams: {a: {instances: [{url: 'ftp://h'}]}}\nroutes: []", "upstreams.a.instances[0].url:"),
        ("upstreams: {a: {instances: [{url: 'http://h:1/path'}]}}\nroutes: []", "is not an instance URL"),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1', weight: 0}]}}\nroutes: []",
            "upstreams.a.instances[0].weight: '0' is not a whole number from 1 to 1000"
        ),
        ("upstreams: {a: {instances: []}}\nroutes: []", "upstreams.a.instances: empty"),
        ("upstreams: {a: {}}\nroutes: []", "upstreams.a: give its instances"),
        ("upstreams: {a: {instances: [{url: 'http://h:1'}], dns: 'x:1'}}\nroutes: []", "not both"),
        ("upstreams: {a: {dns: 'nohostport'}}\nroutes: []", "upstreams.a.dns: 'nohostport' is neither"),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}], healthCheck: {interval: soon}}}\nroutes: []",
            "upstreams.a.healthCheck.interval: 'soon' is not a duration"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}], timeout: {connect: 1s}}}\nroutes: []",
            "upstreams.a.timeout: unknown key"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{name: r, pathPrefix: a, upstream: a}]",
            "routes[0].pathPrefix: 'a' is not a path"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{name: r, pathPrefix: /a/../b, upstream: a}]",
            "routes[0].pathPrefix: '/a/../b' is not a path"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{pathPrefix: /a, upstream: a}]",
            "routes[0].name: missing"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{name: r, pathPrefix: /a, upstream: a, methods: [get]}]",
            "routes[0].methods[0]: 'get' is not a method"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{name: r, pathPrefix: /a, upstream: a, auth: maybe}]",
            "routes[0].auth: 'maybe' is not one of required, none"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{name: r, pathPrefix: /a, upstream: a, rateLimit: fast}]",
            "routes[0].rateLimit: 'fast' is not one of query, upload, admin, off"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{name: r, pathPrefix: /a, upstream: a, auth: none, scopes: [x]}]",
            "routes[0].scopes: a route with auth none"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{name: r, pathPrefix: /a, upstream: a}, {name: s, pathPrefix: /a, upstream: a}]",
            "both have the pathPrefix '/a'"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{name: r, pathPrefix: /a, upstream: a, websocket: yes please}]",
            "routes[0].websocket: 'yes please' is not true or false"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}]}}\nroutes: [{name: r, pathPrefix: /a, upstream: a}]\nextra: 1",
            "extra: unknown key"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}], tls: {caFile: /nonexistent/ca.pem}}}\nroutes: []",
            "upstreams.a.tls.caFile: cannot read '/nonexistent/ca.pem'"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}], retries: {attempts: 0}}}\nroutes: []",
            "upstreams.a.retries.attempts: '0' is not a whole number from 1 to 10"
        ),
        (
            "upstreams: {a: {instances: [{url: 'http://h:1'}], retries: {budget: 20}}}\nroutes: []",
            "upstreams.a.retries.budget: unknown key"
        ),
        ("routes: []", "upstreams: missing"),
        ("- just\n- a list", "the file: expected a mapping"),
        ("upstreams: [\n", "not YAML or JSON"),
        ("", "the file is empty"),
    ])
    func badTablesNameTheEntryAtFault(text: String, problem: String) {
        #expect {
            try RoutingTable.parse(text)
        } throws: { error in
            guard let invalid = error as? RoutingTable.Invalid else { return false }
            return invalid.problems.contains { $0.contains(problem) }
        }
    }

    @Test func everyProblemIsReportedAtOnce() {
        let text = """
            upstreams: {a: {instances: [{url: 'http://h:1', weight: -1}], balancer: x}}
            routes: [{name: r, pathPrefix: nope, upstream: a}]
            """
        do {
            _ = try RoutingTable.parse(text)
            Issue.record("a bad table was accepted")
        } catch {
            #expect(error.problems.count == 3, "\(error.problems)")
        }
    }

    @Test func aBadRoutingFileStopsTheStartNamingTheKeyAndTheEntry() throws {
        let path = NSTemporaryDirectory() + "routing-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "upstreams: {a: {instances: [{url: http://h:1}]}}\nroutes: [{name: r, pathPrefix: /r, upstream: b}]"
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            try GatewayConfiguration(raw: ["routing.file": path])
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.problems.contains {
                $0.key == "routing.file" && $0.message.contains("routes[0].upstream: 'b' is not an upstream")
            }
        }
        #expect(throws: ConfigurationError.self) {
            try GatewayConfiguration(raw: ["routing.file": path + ".missing"])
        }
        for server in ["dns.example:53", "10.0.0.1", "10.0.0.1:0", "[fd00::a]:x"] {
            #expect {
                try GatewayConfiguration(raw: ["routing.dnsServer": server])
            } throws: { error in
                (error as? ConfigurationError)?.problems.map(\.key) == ["routing.dnsServer"]
            }
        }
        #expect(
            try GatewayConfiguration(raw: ["routing.dnsServer": "[fd00::a]:5353"]).routing.dnsServer.map {
                $0 == ("fd00::a", 5353)
            } == true)
    }
}

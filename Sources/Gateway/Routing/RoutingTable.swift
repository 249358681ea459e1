import Orchestrators

/// The proxied routes and the upstreams behind them, as the routing file (`routing.file`) describes them, validated.
///
/// Parsed by ``parse(_:)`` (`RoutingTable+Parsing.swift`); the README shows a complete file.
package struct RoutingTable: Sendable, Equatable {
    /// A service the gateway forwards to, with its instances.
    package struct Upstream: Sendable, Equatable {
        /// Where the instances come from.
        package enum Discovery: Sendable, Equatable {
            /// The instances listed in the file.
            case instances([UpstreamState.Instance])
            /// The A and AAAA records of `host`, each at `port`, re-resolved every `refresh`.
            case addresses(host: String, port: Int, scheme: String, refresh: Duration)
            /// The SRV records of `name` (`_http._tcp.reports.kubin.svc.cluster.local`), re-resolved every `refresh`.
            case service(name: String, scheme: String, refresh: Duration)

            /// How often the instances are resolved again; nil for listed ones.
            var refresh: Duration? {
                switch self {
                case .instances: nil
                case .addresses(_, _, _, let refresh), .service(_, _, let refresh): refresh
                }
            }
        }

        /// Certificates for `https://` instances.
        package struct TLS: Sendable, Equatable {
            /// PEM certificates trusted for the instances; nil: the system's.
            package var caFile: String?
            /// A client certificate and its key presented to the instances (PEM), both or neither.
            package var certificateFile: String?
            package var privateKeyFile: String?
        }

        package var name: String
        package var discovery: Discovery
        package var balancer: BalancerKind
        /// Nil: no active checks (instances stay healthy; outlier detection still ejects).
        package var healthCheck: HealthCheckPolicy?
        package var outlierDetection: OutlierPolicy
        /// Longest wait for a connection.
        package var connectTimeout: Duration
        /// Longest wait for the whole answer's head, from the request's start.
        package var requestTimeout: Duration
        /// How long a kept-alive connection to an instance may wait unused before it closes.
        package var idleTimeout: Duration
        package var tls: TLS
        /// Connections opened to one instance from each event loop; nil: `routing.maxConnectionsPerInstance`.
        package var maxConnectionsPerInstance: Int?
        /// Retries of requests that may be retried (see ``ProxyExchange``).
        package var retry: RetryPolicy
        /// Each instance's circuit breaker.
        package var circuitBreaker: BreakerPolicy
        /// Requests in flight to all its instances at most (a bulkhead: a slow upstream cannot take every
        /// connection and task); past it, 503 `upstream-saturated`.
        package var maxRequests: Int
    }

    /// One proxied path prefix.
    package struct Route: Sendable, Equatable {
        /// Whether callers must authenticate.
        package enum Auth: String, Sendable, CaseIterable {
            case required
            case none
        }

        /// The rate-limit class requests of this route count against.
        package enum RateLimit: Sendable, Equatable {
            /// The class of the method, as on the gateway's own routes.
            case byMethod
            case routeClass(RateLimiter.RouteClass)
            case off
        }

        package var name: String
        /// Matches the path itself and every path below it (`/api/v1/reports` matches `/api/v1/reports/7`, not
        /// `/api/v1/reportsX`).
        package var pathPrefix: String
        /// Nil: every method.
        package var methods: [String]?
        package var upstream: String
        /// Replaces `pathPrefix` in the forwarded path; nil keeps the path as it came.
        package var rewritePrefix: String?
        package var auth: Auth
        /// Every one of these must be among the caller's scopes.
        package var scopes: [String]
        package var rateLimit: RateLimit
        /// Passes `Upgrade: websocket` through.
        package var isWebSocket: Bool
        /// Forwards the caller's `Authorization` header (off by default: the upstream gets the verified identity).
        package var forwardsAuthorization: Bool

        /// Whether `path` is the prefix or below it.
        func matches(_ path: String) -> Bool {
            guard path.hasPrefix(pathPrefix) else { return false }
            if pathPrefix.hasSuffix("/") || path.utf8.count == pathPrefix.utf8.count { return true }
            return path.utf8[path.utf8.index(path.utf8.startIndex, offsetBy: pathPrefix.utf8.count)]
                == UInt8(ascii: "/")
        }

        /// The path to send upstream for `path`.
        func forwardedPath(for path: String) -> String {
            guard let rewritePrefix else { return path }
            let rest = path.dropFirst(pathPrefix.count)
            let joined =
                rewritePrefix.hasSuffix("/") && rest.hasPrefix("/")
                ? String(rewritePrefix.dropLast()) + rest : rewritePrefix + rest
            return joined.isEmpty ? "/" : joined
        }
    }

    package var upstreams: [String: Upstream]
    /// Longest prefix first, so the first match is the one that wins.
    package private(set) var routes: [Route]

    package init(upstreams: [String: Upstream], routes: [Route]) {
        self.upstreams = upstreams
        self.routes = routes.sorted { $0.pathPrefix.utf8.count > $1.pathPrefix.utf8.count }
    }

    /// The table of a gateway without a routing file.
    package static let empty = RoutingTable(upstreams: [:], routes: [])

    /// The route whose prefix is the longest that `path` starts with.
    func route(for path: String) -> Route? { routes.first { $0.matches(path) } }
}

import Hummingbird
import KubinModel
import NIOCore

extension Gateway {
    /// The router: the middleware, in the order requests pass through it, then every route.
    package func makeRouter() throws -> (router: Router<GatewayRequestContext>, routes: RouteTable) {
        // HEAD is answered for every GET route: the GET handler's headers without the body (an archive's bytes are
        // never read for it).
        let router = Router(context: GatewayRequestContext.self, options: .autoGenerateHeadEndpoints)
        let routes = RouteTable()
        router.addMiddleware {
            RequestIDMiddleware()
            TelemetryMiddleware(metrics: metrics)
            securityHeadersMiddleware
            corsMiddleware
            ProblemMiddleware(routes: routes)
            RequestFramingMiddleware()
            RequestLimitsMiddleware(
                maxURLBytes: configuration.http.maxURLBytes, maxBodyBytes: configuration.http.maxBodyBytes)
            authMiddleware
            rateLimitMiddleware
        }
        SnapshotRoutes(uploads: uploads, catalog: catalog, ingest: ingest, metrics: metrics, readiness: readiness)
            .register(on: router)
        InternalRoutes(queries: queries, answers: answers).register(on: router)
        OpsRoutes(readiness: readiness, openAPIDocument: Self.openAPIDocument()).register(on: router)
        routes.record(router)
        return (router, routes)
    }

    /// What the proxy needs to serve the routing table's routes below the router (``ProxyHandler``), with the same
    /// middleware rules; `routes` are the router's own, which always win.
    func proxyEnvironment(routes: RouteTable) -> ProxyEnvironment {
        ProxyEnvironment(
            routing: routing, ownRoutes: routes.paths, pools: routing.pools, metrics: metrics, auth: authMiddleware,
            rateLimits: rateLimitMiddleware, cors: corsMiddleware, securityHeaders: securityHeadersMiddleware,
            trustedProxies: configuration.routing.trustedProxies, maxURLBytes: configuration.http.maxURLBytes,
            tunnelIdleTimeout: .nanoseconds(Int64(configuration.http.idleTimeout / .nanoseconds(1))), logger: logger)
    }

    private var securityHeadersMiddleware: SecurityHeadersMiddleware { .init(isTLS: certificates != nil) }

    private var corsMiddleware: CORSMiddleware {
        .init(allowedOrigins: configuration.cors.allowedOrigins, maxAge: configuration.cors.maxAge)
    }

    private var authMiddleware: AuthMiddleware {
        AuthMiddleware(
            authenticator: access.authenticator,
            clientCertificates: configuration.tls?.clientCAFile == nil
                ? nil : ClientCertificates(scopes: configuration.tls?.clientScopes ?? []),
            metrics: metrics,
            anonymous: configuration.auth.isDisabled
                ? Principal(subject: "anonymous", tenant: .legacy, scopes: Set(Scope.allCases), method: .none) : nil)
    }

    private var rateLimitMiddleware: RateLimitMiddleware { .init(limiter: limiter, metrics: metrics) }

    /// The router of the metrics listener: `/metrics` and `/upstreams`.
    package func makeMetricsRouter() -> (router: Router<GatewayRequestContext>, routes: RouteTable) {
        let router = Router(context: GatewayRequestContext.self)
        let routes = RouteTable()
        router.addMiddleware {
            RequestIDMiddleware()
            ProblemMiddleware(routes: routes)
        }
        MetricsRoutes(metrics: metrics, uploads: uploads, routing: routing).register(on: router)
        routes.record(router)
        return (router, routes)
    }

    /// `openapi/kubin.yaml`, compiled into the binary (SwiftPM `embedInCode`): nothing to ship beside it.
    private static func openAPIDocument() -> ByteBuffer { ByteBuffer(bytes: PackageResources.openapi_yaml) }
}

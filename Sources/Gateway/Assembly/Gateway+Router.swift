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
            ProxyRoutingMiddleware(routing: routing, routes: routes)
            TelemetryMiddleware(metrics: metrics)
            SecurityHeadersMiddleware(isTLS: certificates != nil)
            CORSMiddleware(allowedOrigins: configuration.cors.allowedOrigins, maxAge: configuration.cors.maxAge)
            ProblemMiddleware(routes: routes)
            RequestFramingMiddleware()
            RequestLimitsMiddleware(
                maxURLBytes: configuration.http.maxURLBytes, maxBodyBytes: configuration.http.maxBodyBytes)
            AuthMiddleware(
                authenticator: access.authenticator,
                clientCertificates: configuration.tls?.clientCAFile == nil
                    ? nil : ClientCertificates(scopes: configuration.tls?.clientScopes ?? []),
                metrics: metrics,
                anonymous: configuration.auth.isDisabled
                    ? Principal(subject: "anonymous", tenant: .legacy, scopes: Set(Scope.allCases), method: .none) : nil
            )
            RateLimitMiddleware(limiter: limiter, metrics: metrics)
        }
        SnapshotRoutes(uploads: uploads, catalog: catalog, ingest: ingest, metrics: metrics, readiness: readiness)
            .register(on: router)
        InternalRoutes(queries: queries, answers: answers).register(on: router)
        OpsRoutes(readiness: readiness, openAPIDocument: Self.openAPIDocument()).register(on: router)
        routes.record(router)
        // After the routes: it sees only requests none of them serves.
        router.addMiddleware {
            ProxyMiddleware(
                client: routing.client, metrics: metrics, isTLS: certificates != nil,
                trustedProxies: configuration.routing.trustedProxies)
        }
        return (router, routes)
    }

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

import Hummingbird

/// Finds the proxied route of a request that no route of the gateway's own serves (under any method: the gateway's
/// routes always win), by the longest matching prefix of the routing table in force, and records it in the context
/// for the middleware after it (authentication, rate limits, the access log) and for ``ProxyMiddleware``.
struct ProxyRoutingMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let routing: Routing
    /// The gateway's own routes.
    let routes: RouteTable

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard context.endpointPath == nil else { return try await next(request, context) }
        let path = request.uri.path
        let generation = routing.generation
        guard let route = generation.table.route(for: path), let upstream = generation.upstreams[route.upstream],
            routes.methods(matching: path).isEmpty
        else { return try await next(request, context) }
        var context = context
        context.proxied = ProxiedRequest(route: route, upstream: upstream)
        context.coreContext.endpointPath.value = "proxy:\(route.name)"
        return try await next(request, context)
    }
}

import AsyncHTTPClient
import Clients
import HTTPTypes
import Hummingbird
import KubinModel
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Orchestrators
import Synchronization

/// Forwards a request that ``ProxyRoutingMiddleware`` matched to a proxied route: to an instance its upstream's
/// balancer picks, with both bodies streamed (back-pressure both ways, nothing buffered whole) over pooled keep-alive
/// connections, and the headers rewritten by ``ProxyHeaders``.
///
/// Added after the gateway's own routes, so it sees only requests none of them serves. No eligible instance: 503
/// `no-healthy-upstream` with Retry-After; no answer (connect failure, reset): 502 `bad-gateway`; no answer head
/// within the upstream's request time-out: 504 `gateway-timeout`. A client that goes away cancels the upstream
/// request (the handler's task is cancelled, and AsyncHTTPClient with it).
struct ProxyMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let client: UpstreamClient
    let metrics: GatewayMetrics
    /// Whether clients reach the gateway over TLS (`X-Forwarded-Proto`).
    let isTLS: Bool
    /// Peers whose forwarding headers are kept.
    let trustedProxies: [AddressRange]

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let proxied = context.proxied else { return try await next(request, context) }
        let route = proxied.route
        let upstream = proxied.upstream
        if let methods = route.methods, !methods.contains(request.method.rawValue) {
            return problem(
                KubinError(
                    .methodNotAllowed,
                    "\(request.method) is not allowed here; allowed: \(methods.joined(separator: ", "))."),
                request, context, headers: [.allow: methods.joined(separator: ", ")])
        }
        if request.headers[.upgrade]?.lowercased().contains("websocket") == true {
            // Until upgrades pass through (issue 11), say so rather than forward a request stripped of its upgrade.
            return problem(
                KubinError(
                    .notImplemented,
                    route.isWebSocket
                        ? "WebSocket upgrades are not passed through yet."
                        : "This route does not pass WebSocket upgrades through."),
                request, context)
        }
        guard let pick = upstream.pick() else {
            metrics.healthyInstances(upstream: upstream.name, count: 0)
            let wait = upstream.definition.healthCheck?.interval ?? .seconds(1)
            return problem(
                KubinError(
                    .noHealthyUpstream, "No instance of the upstream '\(upstream.name)' may receive requests now.",
                    retryAfterSeconds: max(1, Int((wait / .seconds(1)).rounded(.up)))),
                request, context)
        }
        let lease = UpstreamLease(pick: pick, upstream: upstream, metrics: metrics)
        let outgoing = try await upstreamRequest(for: request, context: context, route: route, pick: pick)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(
                outgoing, connectTimeout: upstream.definition.connectTimeout,
                deadline: .now() + TimeAmount(upstream.definition.requestTimeout))
        } catch {
            if Task.isCancelled {
                lease.finish(.abandoned, status: 499)
                throw CancellationError()
            }
            let timedOut = (error as? HTTPClientError) == .deadlineExceeded
            lease.finish(.failure, status: timedOut ? 504 : 502)
            proxied.record(instance: pick.address, latency: nil)
            context.logger.notice(
                "upstream request failed",
                metadata: ["upstream": "\(upstream.name)", "instance": "\(pick.address)", "error": "\(error)"])
            let error =
                timedOut
                ? KubinError(
                    .gatewayTimeout,
                    "The upstream '\(upstream.name)' did not answer within \(upstream.definition.requestTimeout).")
                : KubinError(.badGateway, "The upstream '\(upstream.name)' could not be reached or broke off.")
            return problem(error, request, context)
        }
        proxied.record(instance: pick.address, latency: lease.elapsed)
        let status = Int(response.status.code)
        let outcome: UpstreamState.Outcome = status >= 500 ? .failure : .success
        let length = response.headers.first(name: "content-length").flatMap(Int.init)
        let body = response.body
        return Response(
            status: HTTPResponse.Status(code: status, reasonPhrase: response.status.reasonPhrase),
            headers: ProxyHeaders.response(response.headers),
            body: ResponseBody(contentLength: length) { writer in
                do {
                    for try await chunk in body { try await writer.write(chunk) }
                    try await writer.finish(nil)
                    lease.finish(outcome, status: status)
                } catch {
                    lease.finish(Task.isCancelled ? .abandoned : .failure, status: status)
                    throw error
                }
            })
    }

    /// The request for the instance: the route's path rewrite, the forwarded headers, the body streamed as it
    /// arrives (after `100 Continue` when the client waits for one).
    private func upstreamRequest(
        for request: Request, context: Context, route: RoutingTable.Route, pick: UpstreamGroup.Pick
    ) async throws -> HTTPClientRequest {
        var target = route.forwardedPath(for: request.uri.path)
        if let query = request.uri.query { target += "?" + query }
        var outgoing = HTTPClientRequest(url: pick.address + target)
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        let peer = context.channel.remoteAddress?.ipAddress
        outgoing.headers = ProxyHeaders.request(
            request.headers,
            facts: .init(
                peer: peer, scheme: isTLS ? "https" : "http", host: request.head.authority,
                requestID: context.requestID, principal: context.principal,
                forwardsAuthorization: route.forwardsAuthorization,
                isPeerTrusted: peer.map { peer in trustedProxies.contains { $0.contains(peer) } } ?? false))
        outgoing.tlsConfiguration = context.proxied?.upstream.tls
        let length = request.headers[.contentLength].flatMap(Int.init)
        if length.map({ $0 > 0 }) ?? (request.headers[.transferEncoding] != nil) {
            if try RequestParameters.expectsContinue(request) {
                try await context.channel.writeAndFlush(HTTPResponsePart.head(HTTPResponse(status: .continue)))
            }
            outgoing.body = .stream(request.body, length: length.map { .known(Int64($0)) } ?? .unknown)
        } else if length == 0 {
            outgoing.body = .bytes(ByteBuffer())
        }
        return outgoing
    }

    private func problem(
        _ error: KubinError, _ request: Request, _ context: Context, headers: HTTPFields = [:]
    ) -> Response {
        Problem.response(for: error, path: request.uri.path, requestID: context.requestID, extraHeaders: headers)
    }
}

/// One request's hold on an instance: released exactly once, by ``finish(_:status:)`` or, when the answer was never
/// written (the client left first), on release as abandoned; either way the instance's in-flight count drops and
/// the upstream metrics count the request.
private final class UpstreamLease: Sendable {
    private let pick: UpstreamGroup.Pick
    private let upstream: UpstreamGroup
    private let metrics: GatewayMetrics
    private let started = ContinuousClock.now
    private let isFinished = Atomic(false)

    init(pick: UpstreamGroup.Pick, upstream: UpstreamGroup, metrics: GatewayMetrics) {
        self.pick = pick
        self.upstream = upstream
        self.metrics = metrics
    }

    var elapsed: Duration { ContinuousClock.now - started }

    func finish(_ outcome: UpstreamState.Outcome, status: Int) {
        guard !isFinished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if upstream.finish(pick, outcome: outcome) {
            metrics.healthyInstances(upstream: upstream.name, count: upstream.eligibleAddresses.count)
        }
        metrics.upstreamRequestFinished(
            upstream: upstream.name, instance: pick.address, status: status, duration: elapsed)
    }

    deinit { finish(.abandoned, status: 499) }
}

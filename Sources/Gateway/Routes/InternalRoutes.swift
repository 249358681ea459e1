import HTTPTypes
import Hummingbird
import KubinModel
import NIOCore
import Orchestrators

/// `/internal/api/v1/snapshots/{id}/...`: the web UI's views of a `ready` snapshot.
///
/// Every answer goes through the ``AnswerCache``: it carries a strong `ETag`, `If-None-Match` gets `304` (from the
/// cache alone when the answer is cached), and a partial answer (an optional store missing) is sent but not cached.
struct InternalRoutes {
    /// Computes the answers (each within `query.timeout`).
    let queries: QueryOrchestrator<ContinuousClock>
    /// Caches them.
    let answers: AnswerCache

    /// Adds the routes.
    func register(on router: Router<GatewayRequestContext>) {
        router.group("internal/api/v1/snapshots/{id}")
            .get("namespaces", use: namespaces)
            .get("resources", use: resources)
            .get("resources/{kind}/{namespace}/{name}", use: manifest)
            .get("pods", use: pods)
            .get("logs", use: logs)
            .get("events", use: events)
            .get("overview", use: overview)
    }

    @Sendable func namespaces(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        var parameters = try InternalParameters(request, allowed: InternalParameters.paging)
        let limit = try parameters.limit(default: 100, maximum: 1000)
        let cursor = try parameters.cursor(arity: 1)
        return try await respond(request, context, "namespaces", parameters) { id, tenant in
            let view = try await queries.namespaces(
                of: id, tenant: tenant, limit: limit, after: cursor)
            return try listing(
                view.page.items.map(InternalResources.Namespace.init), next: view.page.nextCursor,
                missing: view.missing)
        }
    }

    @Sendable func resources(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        var parameters = try InternalParameters(
            request, allowed: InternalParameters.paging.union(["namespace", "kind", "name", "labelSelector"]))
        let query = ResourceQuery(
            namespace: try parameters.text("namespace"), kind: try parameters.text("kind"),
            namePrefix: try parameters.text("name"), selector: try parameters.selector("labelSelector"),
            limit: try parameters.limit(default: 100, maximum: 1000), after: try parameters.cursor(arity: 3))
        return try await respond(request, context, "resources", parameters) { id, tenant in
            let page = try await queries.resources(of: id, tenant: tenant, query)
            return try listing(page.items.map(InternalResources.Resource.init), next: page.nextCursor, missing: [])
        }
    }

    /// One manifest as stored; `-` as the namespace names a cluster-scoped object.
    @Sendable func manifest(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try InternalParameters(request, allowed: [])
        let kind = context.parameters.get("kind") ?? ""
        let namespace = context.parameters.get("namespace") ?? ""
        let name = context.parameters.get("name") ?? ""
        let key = "resource\u{1F}\(kind)\u{1F}\(namespace)\u{1F}\(name)"
        return try await respond(request, context, key, parameters) { id, tenant in
            let bytes = try await queries.manifest(
                of: id, tenant: tenant, kind: kind, namespace: namespace == "-" ? nil : namespace, name: name)
            return AnswerCache.Computed(body: bytes, isCacheable: true)
        }
    }

    @Sendable func pods(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        var parameters = try InternalParameters(
            request, allowed: InternalParameters.paging.union(["namespace", "phase", "node", "labelSelector"]))
        let query = PodQuery(
            namespace: try parameters.text("namespace"), phase: try parameters.text("phase"),
            node: try parameters.text("node"), selector: try parameters.selector("labelSelector"),
            limit: try parameters.limit(default: 100, maximum: 1000), after: try parameters.cursor(arity: 2))
        return try await respond(request, context, "pods", parameters) { id, tenant in
            let view = try await queries.pods(of: id, tenant: tenant, query)
            return try listing(
                view.page.items.map { InternalResources.Pod($0.pod, logs: $0.logs) }, next: view.page.nextCursor,
                missing: view.missing)
        }
    }

    @Sendable func logs(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        var parameters = try InternalParameters(
            request,
            allowed: InternalParameters.paging.union([
                "namespace", "pod", "container", "previous", "q", "since", "until",
            ]))
        let query = LogQuery(
            namespace: try parameters.text("namespace"), pod: try parameters.text("pod"),
            container: try parameters.text("container"), previous: try parameters.boolean("previous"),
            text: try parameters.searchText("q"), sinceMicros: try parameters.time("since"),
            untilMicros: try parameters.time("until"),
            limit: try parameters.limit(default: 500, maximum: LogQuery.maxLimit),
            after: try parameters.cursor(arity: 2))
        if let since = query.sinceMicros, let until = query.untilMicros, since >= until {
            throw KubinError.invalidParameter("until", "must be later than since")
        }
        return try await respond(request, context, "logs", parameters) { id, tenant in
            let page = try await queries.logs(of: id, tenant: tenant, query)
            return try listing(page.items.map(InternalResources.LogLine.init), next: page.nextCursor, missing: [])
        }
    }

    @Sendable func events(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        var parameters = try InternalParameters(
            request,
            allowed: InternalParameters.paging.union(["namespace", "type", "involvedKind", "involvedName"]))
        let query = EventQuery(
            namespace: try parameters.text("namespace"), type: try parameters.text("type"),
            involvedKind: try parameters.text("involvedKind"), involvedName: try parameters.text("involvedName"),
            limit: try parameters.limit(default: 100, maximum: 1000), after: try parameters.cursor(arity: 2))
        return try await respond(request, context, "events", parameters) { id, tenant in
            let page = try await queries.events(of: id, tenant: tenant, query)
            return try listing(page.items.map(InternalResources.Event.init), next: page.nextCursor, missing: [])
        }
    }

    @Sendable func overview(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let parameters = try InternalParameters(request, allowed: [])
        return try await respond(request, context, "overview", parameters) { id, tenant in
            let view = try await queries.overview(of: id, tenant: tenant)
            return AnswerCache.Computed(
                body: try JSON.encode(InternalResources.Overview(view)), isCacheable: view.missing.isEmpty)
        }
    }

    // MARK: Helpers

    private func listing<Item: Encodable>(
        _ items: [Item], next: String?, missing: [FanOut.Missing]
    ) throws -> AnswerCache.Computed {
        let body = InternalResources.Listing(
            items: items, nextCursor: next, partial: InternalResources.Missing.all(missing))
        return AnswerCache.Computed(body: try JSON.encode(body), isCacheable: missing.isEmpty)
    }

    /// Answers from the cache or `compute`, with `ETag`, `304` for a matching `If-None-Match`.
    private func respond(
        _ request: Request, _ context: GatewayRequestContext, _ view: String, _ parameters: InternalParameters,
        compute: @escaping (SnapshotID, TenantID) async throws -> AnswerCache.Computed
    ) async throws -> Response {
        let id = try RequestParameters.snapshotID(context)
        let tenant = try context.tenant
        let ifNoneMatch = request.headers[values: .ifNoneMatch].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let outcome = try await answers.answer(
            snapshot: id, tenant: tenant, key: parameters.cacheKey(view), ifNoneMatch: ifNoneMatch
        ) { try await compute(id, tenant) }
        switch outcome {
        case .notModified(let etag):
            return Response(status: .notModified, headers: [.eTag: etag, .cacheControl: "no-cache"])
        case .answer(let answer):
            return Response(
                status: .ok,
                headers: [.contentType: "application/json", .eTag: answer.etag, .cacheControl: "no-cache"],
                body: ResponseBody(byteBuffer: answer.body))
        }
    }
}

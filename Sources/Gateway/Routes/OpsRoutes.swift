import Hummingbird
import NIOCore
import Orchestrators

/// `/healthz`, `/readyz` and `/openapi.yaml` (`/metrics` has a listener of its own: ``MetricsRoutes``).
struct OpsRoutes {
    /// Answers `/readyz`.
    let readiness: ReadinessMonitor
    /// The bytes of `/openapi.yaml`.
    let openAPIDocument: ByteBuffer

    /// Adds the routes at the root.
    func register(on router: Router<GatewayRequestContext>) {
        let healthy = ByteBuffer(string: #"{"status":"ok"}"#)
        router.get("healthz") { _, _ in
            // Liveness: answers while the process can serve HTTP, without touching any dependency (or an encoder).
            Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: healthy))
        }
        router.get("readyz") { _, _ in
            let report = readiness.report()
            return try JSON.response(
                report, status: report.isReady ? .ok : .serviceUnavailable, headers: [.cacheControl: "no-store"])
        }
        router.get("openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: ResponseBody(byteBuffer: openAPIDocument))
        }
    }
}

/// `/metrics` and `/upstreams`, on the metrics listener (for operators, not the API's callers).
struct MetricsRoutes {
    /// Renders the exposition.
    let metrics: GatewayMetrics
    /// Reports uploads in flight.
    let uploads: UploadOrchestrator
    /// Reports each upstream's instances.
    let routing: Routing

    /// Adds `/metrics`.
    func register(on router: Router<GatewayRequestContext>) {
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: metrics.exposition(uploadsInFlight: uploads.uploadsInFlight)))
        }
        // Upstreams do not make the gateway unready (/readyz is its own dependencies only); this shows them.
        router.get("upstreams") { _, _ in
            try JSON.response(UpstreamsReport(routing.generation), headers: [.cacheControl: "no-store"])
        }
    }
}

/// Each upstream of the routing table in force with its instances: what `/upstreams` answers.
struct UpstreamsReport: Encodable {
    struct Upstream: Encodable {
        var name: String
        var balancer: String
        /// Instances that may receive requests now.
        var eligible: Int
        var instances: [Instance]
    }

    struct Instance: Encodable {
        var address: String
        var weight: Int
        /// As the active checks last decided.
        var isHealthy: Bool
        var isEjected: Bool
        var ejections: Int
        var inFlight: Int
        /// Its circuit breaker: `closed`, `half-open` or `open`.
        var breaker: String
    }

    var upstreams: [Upstream]

    init(_ generation: Routing.Generation) {
        upstreams = generation.upstreams.values.sorted { $0.name < $1.name }.map { group in
            let eligible = Set(group.eligibleAddresses)
            let breakers = group.breakerStates
            return Upstream(
                name: group.name, balancer: group.definition.balancer.rawValue, eligible: eligible.count,
                instances: group.instances.map { instance in
                    Instance(
                        address: instance.address, weight: instance.weight, isHealthy: instance.isHealthy,
                        isEjected: instance.ejectedUntil.map { $0 > .now } ?? false,
                        ejections: instance.ejections, inFlight: instance.inFlight,
                        breaker: breakers[instance.address]?.name ?? "closed")
                })
        }
    }
}

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

/// `/metrics`, on the metrics listener.
struct MetricsRoutes {
    /// Renders the exposition.
    let metrics: GatewayMetrics
    /// Reports uploads in flight.
    let uploads: UploadOrchestrator

    /// Adds `/metrics`.
    func register(on router: Router<GatewayRequestContext>) {
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: metrics.exposition(uploadsInFlight: uploads.uploadsInFlight)))
        }
    }
}

import Logging
import NIOCore
import Orchestrators
import Prometheus
import Synchronization

/// The gateway's Prometheus metrics, on a registry of its own (so each instance, and each test, counts alone).
package final class GatewayMetrics: Sendable {
    /// Why an upload was refused, as the `reason` label of `gateway_uploads_rejected_total`.
    package enum RejectionReason: String, CaseIterable, Sendable {
        case concurrency, tooLarge = "too_large", unsupportedFormat = "unsupported_format"
        case idempotencyConflict = "idempotency_conflict", incomplete, invalid, unavailable
        /// The principal holds its share of the slots.
        case principal
        /// The body did not keep its pace (`uploads.bodyTimeout`, `uploads.minBytesPerSecond`).
        case tooSlow = "too_slow"
    }

    /// The registry `/metrics` renders.
    package let registry: PrometheusCollectorRegistry
    private let activeRequests: Gauge
    private let uploadsInFlight: Gauge
    private let uploadBytes: Counter
    /// The series of every request and proxied request, by their labels, made once each: the registry builds the
    /// metric's name and label list on every lookup, which cost more than the rest of a /healthz answer's metrics.
    private let series = Mutex<[SeriesKey: (count: Counter, duration: DurationHistogram)]>([:])

    private struct SeriesKey: Hashable {
        enum Kind { case request, upstream }
        /// A request's (method, route) or a proxied request's (upstream, instance).
        var kind: Kind
        var first: String
        var second: String
        var status: Int
    }

    private static let durationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
        .seconds(60), .seconds(300),
    ]

    /// Registers every metric (rejection reasons at zero, so alerts see them from the start).
    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        activeRequests = registry.makeGauge(
            descriptor: Self.name("active_requests", unit: "", help: "Requests being served now."))
        uploadsInFlight = registry.makeGauge(
            descriptor: Self.name("uploads_in_flight", unit: "", help: "Uploads admitted and not yet finished."))
        uploadBytes = registry.makeCounter(
            descriptor: Self.name("upload_bytes", unit: "total", help: "Bytes received in upload bodies."))
        for reason in RejectionReason.allCases { _ = rejectionCounter(reason) }
        for routeClass in ["query", "upload", "admin"] { _ = rateLimitCounter(routeClass) }
    }

    /// A request started.
    func requestStarted() { activeRequests.increment() }

    /// A request finished: its status and time (the response body included) go into the request metrics.
    func requestFinished(method: String, route: String, status: Int, duration: Duration) {
        activeRequests.decrement()
        let metrics = series(SeriesKey(kind: .request, first: method, second: route, status: status)) { registry in
            (
                registry.makeCounter(
                    descriptor: Self.name(
                        "requests", unit: "total", help: "Requests served, by method, route and status."),
                    labels: [("method", method), ("route", route), ("status", String(status))]),
                registry.makeDurationHistogram(
                    descriptor: Self.name(
                        "request_duration", unit: "seconds", help: "Time to serve a request, its body included."),
                    labels: [("method", method), ("route", route)], buckets: Self.durationBuckets)
            )
        }
        metrics.count.increment()
        metrics.duration.record(duration)
    }

    private func series(
        _ key: SeriesKey, make: (PrometheusCollectorRegistry) -> (Counter, DurationHistogram)
    ) -> (count: Counter, duration: DurationHistogram) {
        if let known = series.withLock({ $0[key] }) { return known }
        let made = make(registry)
        series.withLock { $0[key] = made }
        return made
    }

    /// A proxied request ended; `status` is the upstream's, or 502/504 when it gave none.
    func upstreamRequestFinished(upstream: String, instance: String, status: Int, duration: Duration) {
        let metrics = series(SeriesKey(kind: .upstream, first: upstream, second: instance, status: status)) {
            registry in
            (
                registry.makeCounter(
                    descriptor: Self.name(
                        "upstream_requests", unit: "total",
                        help: "Requests sent to upstreams, by upstream, instance and status."),
                    labels: [("upstream", upstream), ("instance", instance), ("status", String(status))]),
                registry.makeDurationHistogram(
                    descriptor: Self.name(
                        "upstream_request_duration", unit: "seconds",
                        help: "Time of a request to an upstream, from sending it to the end of the answer's body."),
                    labels: [("upstream", upstream)], buckets: Self.durationBuckets)
            )
        }
        metrics.count.increment()
        metrics.duration.record(duration)
    }

    /// A proxied request was refused because its upstream had `maxRequests` in flight.
    func upstreamSaturated(upstream: String) {
        registry.makeCounter(
            descriptor: Self.name(
                "upstream_rejected", unit: "total",
                help: "Proxied requests refused before any instance was asked, by upstream and reason."),
            labels: [("upstream", upstream), ("reason", "saturated")]
        ).increment()
    }

    /// A call to a store was refused by its guard (`reason`: `circuit-open` or `saturated`).
    func dependencyRejected(dependency: String, reason: String) {
        registry.makeCounter(
            descriptor: Self.name(
                "dependency_rejected", unit: "total",
                help: "Store calls failed at once by their guard (open breaker or full bulkhead), by store and reason."),
            labels: [("dependency", dependency), ("reason", reason)]
        ).increment()
    }

    /// A failed store call is tried again.
    func dependencyRetried(dependency: String) {
        registry.makeCounter(
            descriptor: Self.name(
                "dependency_retries", unit: "total", help: "Store calls tried again after a failure, by store."),
            labels: [("dependency", dependency)]
        ).increment()
    }

    /// A proxied request went to another attempt.
    func upstreamRetried(upstream: String) {
        registry.makeCounter(
            descriptor: Self.name(
                "upstream_retries", unit: "total", help: "Proxied requests sent again after a failed attempt."),
            labels: [("upstream", upstream)]
        ).increment()
    }

    /// A circuit breaker changed state (`gateway_circuit_breaker_state`: 0 closed, 1 half-open, 2 open).
    func circuitBreakerState(dependency: String, state: CircuitBreaker.State) {
        registry.makeGauge(
            descriptor: Self.name(
                "circuit_breaker_state", unit: "",
                help: "A dependency's circuit breaker: 0 closed, 1 half-open, 2 open."),
            labels: [("dependency", dependency)]
        ).set(to: Double(state.gauge))
    }

    /// A breaker (a store's or an upstream instance's) changed state: the gauge, and a log line.
    func circuitBreakerChanged(_ transition: CircuitBreaker.Transition, dependency: String, logger: Logger) {
        circuitBreakerState(dependency: dependency, state: transition.to)
        logger.notice(
            "circuit breaker \(transition.to.name)",
            metadata: ["dependency": "\(dependency)", "from": "\(transition.from.name)"])
    }

    /// The instances of `upstream` that may receive requests now.
    func healthyInstances(upstream: String, count: Int) {
        registry.makeGauge(
            descriptor: Self.name(
                "upstream_healthy_instances", unit: "", help: "Instances of an upstream that may receive requests."),
            labels: [("upstream", upstream)]
        ).set(to: Double(count))
    }

    /// `count` more bytes of upload bodies arrived.
    func uploadBytesReceived(_ count: Int) { uploadBytes.increment(by: Int64(count)) }

    /// An upload was refused.
    func uploadRejected(_ reason: RejectionReason) { rejectionCounter(reason).increment() }

    /// A credential was refused for `reason` (``AuthFailure/reason``).
    func authenticationFailed(reason: String) {
        registry.makeCounter(
            descriptor: Self.name(
                "authentication_failures", unit: "total", help: "Credentials refused, by reason."),
            labels: [("reason", reason)]
        ).increment()
    }

    /// A request was refused by the rate limit of `routeClass`.
    func rateLimitExceeded(routeClass: String) { rateLimitCounter(routeClass).increment() }

    private func rateLimitCounter(_ routeClass: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.name(
                "rate_limit_exceeded", unit: "total", help: "Requests refused by a rate limit, by route class."),
            labels: [("class", routeClass)])
    }

    /// The Prometheus text exposition, with `gateway_uploads_in_flight` set to `uploadsInFlight` first.
    func exposition(uploadsInFlight count: Int) -> ByteBuffer {
        uploadsInFlight.set(to: Double(count))
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return ByteBuffer(bytes: bytes)
    }

    private func rejectionCounter(_ reason: RejectionReason) -> Counter {
        registry.makeCounter(
            descriptor: Self.name("uploads_rejected", unit: "total", help: "Uploads refused, by reason."),
            labels: [("reason", reason.rawValue)])
    }

    private static func name(_ metric: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "gateway", metricName: metric, unitName: unit, helpText: help)
    }
}

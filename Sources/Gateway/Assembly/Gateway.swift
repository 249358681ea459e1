import Clients
import Foundation
import Logging
import Orchestrators

/// One gateway instance: its configuration and the orchestrators over its open stores.
///
/// ``with(configuration:logger:now:_:)`` opens what the configuration names for as long as its body runs; the
/// router (with the middleware order) is built in `Gateway+Router.swift`, what runs in `Gateway+Services.swift`.
/// `kubin-gateway` and the tests make a gateway the same way.
package struct Gateway: Sendable {
    package let configuration: GatewayConfiguration
    package let metrics: GatewayMetrics
    /// The readiness state behind `/readyz`.
    package let readiness: ReadinessMonitor
    let uploads: UploadOrchestrator
    /// Reads and deletes stored snapshots.
    let catalog: SnapshotCatalog
    /// Indexes stored snapshots (a service).
    package let ingest: IngestOrchestrator
    /// Answers the internal API.
    let queries: QueryOrchestrator<ContinuousClock>
    /// Caches those answers.
    let answers: AnswerCache
    /// The instance's logger (requests log through their own, which carries the request id).
    let logger: Logger
    /// Who may call.
    package let access: Access
    /// The API listener's open connections.
    let connections: ConnectionCount
    /// Holds callers to their rates.
    let limiter: RateLimiter
    /// The TLS certificate in use, re-read when its files change; nil without TLS.
    let certificates: CertificateReloader?
    /// The proxied routes and their upstreams.
    let routing: Routing

    /// Takes the data directory, opens the stores and the keys `configuration` names, runs `body` with the gateway
    /// over them, and closes everything (in reverse) whether `body` returns or throws.
    @discardableResult
    package static func with<Result: Sendable>(
        configuration: GatewayConfiguration, logger: Logger, now: @escaping @Sendable () -> Date = Date.init,
        _ body: (Gateway) async throws -> Result
    ) async throws -> Result {
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let lock = try DataDirectoryLock(directory: configuration.dataDirectory)
        let metrics = GatewayMetrics()
        return try await closing({ lock.release() }) {
            try await Stores.with(configuration, metrics: metrics, logger: logger) { stores in
                try await Access.with(configuration, keys: stores.metadata, logger: logger, now: now) { access in
                    let certificates = try configuration.tls.map {
                        try CertificateReloader(
                            certificatePath: $0.certificateFile, privateKeyPath: $0.privateKeyFile,
                            interval: $0.reloadInterval, logger: logger)
                    }
                    let routingSettings = configuration.routing
                    return try await UpstreamClient.with(
                        maxConnectionsPerInstance: routingSettings.maxConnectionsPerInstance
                    ) { client in
                        let routing: Routing
                        do {
                            routing = try Routing(
                                path: routingSettings.file, table: routingSettings.table, client: client,
                                maxConnectionsPerInstance: routingSettings.maxConnectionsPerInstance)
                        } catch {
                            throw ConfigurationError(problems: [.init(key: "routing.file", message: "\(error)")])
                        }
                        return try await closing({ await routing.pools.closeIdle() }) {
                            try await body(
                                Gateway(
                                    configuration: configuration, stores: stores, access: access,
                                    certificates: certificates, routing: routing, metrics: metrics, now: now,
                                    logger: logger))
                        }
                    }
                }
            }
        }
    }

    private init(
        configuration: GatewayConfiguration, stores: Stores, access: Access, certificates: CertificateReloader?,
        routing: Routing, metrics: GatewayMetrics, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.routing = routing
        let (metadata, objects, analytics, cache) = (stores.metadata, stores.objects, stores.analytics, stores.cache)
        self.configuration = configuration
        self.logger = logger
        self.access = access
        self.certificates = certificates
        self.metrics = metrics
        self.connections = ConnectionCount(limit: configuration.http.maxConnections)
        self.limiter = RateLimiter(
            rates: configuration.rateLimits.rates, shared: stores.rateLimits,
            local: LocalRateLimitStore(now: { Int64((now().timeIntervalSince1970 * 1_000_000).rounded()) }),
            expectedReplicas: configuration.rateLimits.expectedReplicas, logger: logger)
        let limits = configuration.uploads
        self.uploads = UploadOrchestrator(
            configuration: .init(
                maxConcurrent: limits.maxConcurrent, maxConcurrentPerPrincipal: limits.maxConcurrentPerPrincipal,
                maxBytes: limits.maxBytes, retryAfterSeconds: Int((limits.retryAfter / .seconds(1)).rounded(.up)),
                bodyTimeout: limits.bodyTimeout, minBytesPerSecond: limits.minBytesPerSecond),
            metadata: metadata, objects: objects, now: now)
        self.answers = AnswerCache(cache: cache, logger: logger)
        self.catalog = SnapshotCatalog(metadata: metadata, objects: objects, analytics: analytics, answers: answers)
        self.queries = QueryOrchestrator(
            metadata: metadata, objects: objects, analytics: analytics, timeout: configuration.query.timeout,
            branchTimeout: configuration.query.branchTimeout)
        self.ingest = IngestOrchestrator(
            metadata: metadata, objects: objects, analytics: analytics,
            settings: .init(concurrency: configuration.ingest.concurrency, lease: configuration.ingest.lease),
            logger: logger, now: now)
        self.readiness = ReadinessMonitor(
            dependencies: [
                .init(name: "metadata", check: metadata.checkHealth),
                .init(name: "storage", check: objects.checkHealth),
                .init(name: "analytics", check: analytics.checkHealth),
                .init(name: "cache", check: cache.checkHealth),
            ],
            interval: configuration.readiness.interval, timeout: configuration.readiness.timeout, logger: logger)
    }
}

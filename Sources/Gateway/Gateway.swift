import AsyncHTTPClient
import Clients
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import KubinModel
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Orchestrators
import ServiceLifecycle
import UnixSignals

/// One gateway instance: its configuration, its opened stores, and the orchestrators over them.
///
/// ``with(configuration:logger:now:_:)`` opens everything the configuration names and closes it when the body
/// returns; ``makeServiceGroup(signals:onServerRunning:)`` assembles what runs. Tests use the same two calls with
/// their own configuration, so they exercise exactly what `kubin-gateway` runs.
package struct Gateway: Sendable {
    /// The validated configuration.
    package let configuration: GatewayConfiguration
    /// The instance's metrics.
    package let metrics: GatewayMetrics
    /// The readiness state behind `/readyz`.
    package let readiness: ReadinessMonitor
    /// Stores uploads.
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
    /// What the stores need running (connection pools), started before everything else.
    let storeServices: [any Service]
    /// Who may call.
    package let access: Access
    /// The API listener's open connections.
    let connections: ConnectionCount
    /// Holds callers to their rates.
    let limiter: RateLimiter
    /// The TLS certificate in use, re-read when its files change; nil without TLS.
    let certificates: CertificateReloader?

    /// Opens the stores `configuration` names, runs `body`, and closes them whether `body` returns or throws.
    @discardableResult
    package static func with<Result: Sendable>(
        configuration: GatewayConfiguration, logger: Logger, now: @escaping @Sendable () -> Date = Date.init,
        _ body: (Gateway) async throws -> Result
    ) async throws -> Result {
        try FileManager.default.createDirectory(
            atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let lock = try DataDirectoryLock(directory: configuration.dataDirectory)
        // File I/O of the object store runs on its own threads: a slow fsync must not stall SQLite or anything else.
        let fileThreads = NIOThreadPool(numberOfThreads: 8)
        fileThreads.start()
        // Closed in reverse: the lock goes last.
        var closers: [@Sendable () async throws -> Void] = [
            { lock.release() }, { try await fileThreads.shutdownGracefully() },
        ]
        do {
            // One HTTP connection pool for the stores spoken to over HTTP (S3, ClickHouse), made when one needs it.
            var http: HTTPClient?
            func sharedHTTP() -> HTTPClient {
                if let http { return http }
                let client = HTTPClient(eventLoopGroupProvider: .singleton)
                closers.append { try await client.shutdown() }
                http = client
                return client
            }
            var storeServices: [any Service] = []
            let metadata = try await openMetadata(
                configuration.metadata, logger: logger, closers: &closers, services: &storeServices)
            let objects: any ObjectStore
            switch configuration.storage {
            case .directory(let path): objects = try await LocalObjectStore.open(root: path, threadPool: fileThreads)
            case .s3(let location):
                objects = S3ObjectStore(
                    location: location, credentials: try s3Credentials(configuration), http: sharedHTTP(),
                    logger: logger)
            }
            let analytics: any AnalyticsStore
            switch configuration.analytics {
            case .sqlite(let path):
                let store = try await SQLiteAnalyticsStore.open(path: path, logger: logger)
                closers.append { try await store.close() }
                analytics = store
            case .clickHouse(let location):
                analytics = try await ClickHouseAnalyticsStore.open(
                    client: ClickHouseClient(location: location, http: sharedHTTP(), logger: logger), logger: logger)
            }
            let cache: any Cache
            var rateLimits: (any RateLimitStore)?
            switch configuration.cache {
            case .inProcess(let maxBytes): cache = InProcessCache(capacityBytes: maxBytes)
            case .redis(let location, let localMaxBytes, let localTimeToLive):
                let client = try RedisClient(location)
                closers.append { await client.close() }
                rateLimits = RedisRateLimitStore(client: client)
                let redis = RedisCache(client: client)
                cache =
                    localTimeToLive > .zero && localMaxBytes > 0
                    ? TieredCache(
                        local: InProcessCache(capacityBytes: localMaxBytes), shared: redis,
                        localTimeToLive: localTimeToLive)
                    : redis
            }
            let access = try await Access.open(
                configuration, metadata: metadata, logger: logger, closers: &closers, now: now)
            let certificates = try configuration.tls.map {
                try CertificateReloader(
                    certificatePath: $0.certificateFile, privateKeyPath: $0.privateKeyFile,
                    interval: $0.reloadInterval, logger: logger)
            }
            let gateway = Gateway(
                configuration: configuration,
                stores: Stores(
                    metadata: metadata, objects: objects, analytics: analytics, cache: cache, rateLimits: rateLimits),
                access: access, certificates: certificates, now: now, logger: logger, storeServices: storeServices)
            let result = try await body(gateway)
            await close(closers.reversed(), logger: logger)
            return result
        } catch {
            await close(closers.reversed(), logger: logger)
            throw error
        }
    }

    /// The S3 credentials the configuration found (loading refuses an S3 store without any).
    private static func s3Credentials(_ configuration: GatewayConfiguration) throws -> SigV4Signer.Credentials {
        guard let credentials = configuration.storageCredentials else {
            throw ConfigurationError(problems: [.init(key: "storage.accessKeyId", message: "is needed for S3")])
        }
        return credentials
    }

    /// Opens the metadata store `backend` names; what must close it goes to `closers`, what must run (a connection
    /// pool) to `services`.
    static func openMetadata(
        _ backend: GatewayConfiguration.MetadataBackend, logger: Logger,
        closers: inout [@Sendable () async throws -> Void], services: inout [any Service]
    ) async throws -> any MetadataStore {
        switch backend {
        case .sqlite(let path):
            let store = try await SQLiteMetadataStore.open(path: path, logger: logger)
            closers.append { try await store.close() }
            return store
        case .postgres(let location):
            let store = try await PostgresMetadataStore.open(location, logger: logger)
            services.append(store.client)
            return store
        }
    }

    /// The opened stores.
    package struct Stores: Sendable {
        /// Snapshots, jobs and the index.
        package var metadata: any MetadataStore
        /// Archives and manifests.
        package var objects: any ObjectStore
        /// Log lines and events.
        package var analytics: any AnalyticsStore
        /// Cached answers.
        package var cache: any Cache
        /// Rate-limit state shared by replicas; nil: each instance's own.
        package var rateLimits: (any RateLimitStore)?

        /// Groups the stores.
        package init(
            metadata: any MetadataStore, objects: any ObjectStore, analytics: any AnalyticsStore, cache: any Cache,
            rateLimits: (any RateLimitStore)? = nil
        ) {
            self.metadata = metadata
            self.objects = objects
            self.analytics = analytics
            self.cache = cache
            self.rateLimits = rateLimits
        }
    }

    /// A gateway over stores opened elsewhere (tests wrap them to inject latency or failures).
    init(
        configuration: GatewayConfiguration, stores: Stores, access: Access, certificates: CertificateReloader? = nil,
        now: @escaping @Sendable () -> Date = Date.init, logger: Logger, storeServices: [any Service] = []
    ) {
        self.storeServices = storeServices
        self.access = access
        self.certificates = certificates
        self.connections = ConnectionCount(limit: configuration.http.maxConnections)
        self.limiter = RateLimiter(
            rates: configuration.rateLimits.rates, shared: stores.rateLimits,
            local: LocalRateLimitStore(now: { Int64((now().timeIntervalSince1970 * 1_000_000).rounded()) }),
            expectedReplicas: configuration.rateLimits.expectedReplicas, logger: logger)
        let (metadata, objects, analytics, cache) = (stores.metadata, stores.objects, stores.analytics, stores.cache)
        self.configuration = configuration
        self.logger = logger
        self.metrics = GatewayMetrics()
        var uploadLimits = UploadOrchestrator.Configuration()
        uploadLimits.maxConcurrent = configuration.uploads.maxConcurrent
        uploadLimits.maxBytes = configuration.uploads.maxBytes
        uploadLimits.retryAfterSeconds = Int(
            (configuration.uploads.retryAfter / .seconds(1)).rounded(.up))
        self.uploads = UploadOrchestrator(configuration: uploadLimits, metadata: metadata, objects: objects, now: now)
        self.answers = AnswerCache(cache: cache, logger: logger)
        self.catalog = SnapshotCatalog(metadata: metadata, objects: objects, analytics: analytics, answers: answers)
        self.queries = QueryOrchestrator(
            metadata: metadata, objects: objects, analytics: analytics, timeout: configuration.query.timeout,
            branchTimeout: configuration.query.branchTimeout)
        var ingestSettings = IngestOrchestrator.Settings()
        ingestSettings.concurrency = configuration.ingest.concurrency
        ingestSettings.lease = configuration.ingest.lease
        self.ingest = IngestOrchestrator(
            metadata: metadata, objects: objects, analytics: analytics, settings: ingestSettings, logger: logger,
            now: now)
        self.readiness = ReadinessMonitor(
            dependencies: [
                .init(name: "metadata", check: metadata.checkHealth),
                .init(name: "storage", check: objects.checkHealth),
                .init(name: "analytics", check: analytics.checkHealth),
                .init(name: "cache", check: cache.checkHealth),
            ],
            interval: configuration.readiness.interval, timeout: configuration.readiness.timeout, logger: logger)
    }

    /// The router: the middleware, in the order requests pass through it, then every route.
    package func makeRouter() throws -> (router: Router<GatewayRequestContext>, routes: RouteTable) {
        // HEAD is answered for every GET route: the GET handler's headers without the body (an archive's bytes are
        // never read for it).
        let router = Router(context: GatewayRequestContext.self, options: .autoGenerateHeadEndpoints)
        let routes = RouteTable()
        router.addMiddleware {
            RequestIDMiddleware()
            TelemetryMiddleware(metrics: metrics)
            SecurityHeadersMiddleware(isTLS: certificates != nil)
            CORSMiddleware(allowedOrigins: configuration.cors.allowedOrigins, maxAge: configuration.cors.maxAge)
            ProblemMiddleware(routes: routes)
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
        return (router, routes)
    }

    /// The router of the metrics listener: `/metrics` alone.
    package func makeMetricsRouter() -> (router: Router<GatewayRequestContext>, routes: RouteTable) {
        let router = Router(context: GatewayRequestContext.self)
        let routes = RouteTable()
        router.addMiddleware {
            RequestIDMiddleware()
            ProblemMiddleware(routes: routes)
        }
        MetricsRoutes(metrics: metrics, uploads: uploads).register(on: router)
        routes.record(router)
        return (router, routes)
    }

    /// The HTTP server as a service; `onServerRunning` learns the bound port (useful with port 0).
    package func makeApplication(
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let http = configuration.http
        let connections = connections
        let server = HTTPServerBuilder.http1(
            configuration: .init(
                additionalChannelHandlers: [
                    LingeringCloseHandler(), MalformedRequestHandler(),
                    ConnectionGuard(connections: connections, headTimeout: http.headerTimeout),
                ],
                idleTimeout: .nanoseconds(Int64(http.idleTimeout / .nanoseconds(1))),
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: http.maxHeaderBytes, maxHeaderListSize: http.maxHeaderBytes)))
        return Application(
            router: try makeRouter().router,
            server: try certificates.map { try .tls(server, tlsConfiguration: tlsConfiguration($0)) } ?? server,
            configuration: ApplicationConfiguration(address: .hostname(http.host, port: http.port)),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? http.port) },
            logger: logger)
    }

    /// TLS 1.2 or newer with the reloader's current pair on every handshake, and client certificates verified
    /// against `tls.clientCAFile` when one is presented.
    private func tlsConfiguration(_ certificates: CertificateReloader) -> TLSConfiguration {
        let (chain, key) = certificates.pair
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        tls.sslContextCallback = { _, promise in promise.succeed(certificates.override) }
        if let clientCA = configuration.tls?.clientCAFile {
            tls.trustRoots = .file(clientCA)
            tls.certificateVerification = .optionalVerification
        }
        return tls
    }

    /// The metrics listener as a service; `onServerRunning` learns its bound port.
    package func makeMetricsApplication(
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let listener = configuration.metrics
        return Application(
            router: makeMetricsRouter().router,
            server: .http1(configuration: .init(idleTimeout: .seconds(75))),
            configuration: ApplicationConfiguration(
                address: .hostname(listener.host, port: listener.port), serverName: nil),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? listener.port) },
            logger: logger)
    }

    /// Everything that runs, in start order: readiness checks, the HTTP server, the drain step. A graceful shutdown
    /// (one of `signals`, or `triggerGracefulShutdown()`) stops them in reverse: `/readyz` turns 503 and the listener
    /// stays open for `shutdown.drainDelay`; then the listener closes and in-flight requests get
    /// `shutdown.gracePeriod` to finish before they are cancelled.
    package func makeServiceGroup(
        signals: [UnixSignal], onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in },
        onMetricsRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> ServiceGroup {
        var group = ServiceGroupConfiguration(
            services: storeServices.map { .init(service: $0) } + (access.refresher.map { [.init(service: $0)] } ?? [])
                + [
                    // Started before and stopped after the API: scrapes still work while it drains.
                    .init(service: makeMetricsApplication(onServerRunning: onMetricsRunning))
                ] + (certificates.map { [.init(service: $0)] } ?? []) + [
                    .init(service: readiness),
                    .init(service: ingest),
                    .init(service: try makeApplication(onServerRunning: onServerRunning)),
                    .init(
                        service: DrainService(
                            readiness: readiness, delay: configuration.shutdown.drainDelay,
                            gracePeriod: configuration.shutdown.gracePeriod, logger: logger)),
                ],
            gracefulShutdownSignals: signals, logger: logger)
        group.maximumGracefulShutdownDuration = configuration.shutdown.drainDelay + configuration.shutdown.gracePeriod
        group.maximumCancellationDuration = .seconds(10)
        return ServiceGroup(configuration: group)
    }

    /// Runs until SIGTERM or SIGINT and a graceful shutdown. Requests still running when the shutdown deadline passes
    /// are cancelled; that is logged as a warning and still counts as an orderly stop. Any other failure is rethrown.
    package func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let logger = logger
        let host = configuration.metrics.host
        let group = try makeServiceGroup(signals: [.sigterm, .sigint], onServerRunning: onServerRunning) { port in
            logger.info("metrics listening", metadata: ["host": "\(host)", "port": "\(port)"])
        }
        do {
            try await group.run()
        } catch  where readiness.isDraining {
            logger.warning("a service failed during graceful shutdown", metadata: ["error": "\(error)"])
        }
        let deadline = configuration.shutdown.drainDelay + configuration.shutdown.gracePeriod
        if let since = readiness.drainingSince, ContinuousClock.now - since >= deadline {
            logger.warning(
                "graceful shutdown deadline passed; remaining requests were cancelled",
                metadata: ["deadline": "\(deadline)"])
        }
        logger.info("stopped")
    }

    /// `openapi/kubin.yaml`, compiled into the binary (SwiftPM `embedInCode`): nothing to ship beside it.
    private static func openAPIDocument() -> ByteBuffer { ByteBuffer(bytes: PackageResources.openapi_yaml) }

    private static func close(_ closers: [@Sendable () async throws -> Void], logger: Logger) async {
        for close in closers {
            do { try await close() } catch { logger.error("closing a store failed", metadata: ["error": "\(error)"]) }
        }
    }
}

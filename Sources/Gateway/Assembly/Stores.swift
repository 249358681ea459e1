import AsyncHTTPClient
import Clients
import Logging
import NIOPosix
import Orchestrators

/// The stores a configuration names, open for the duration of ``with(_:metrics:logger:_:)``.
struct Stores: Sendable {
    var metadata: any MetadataStore
    var objects: any ObjectStore
    var analytics: any AnalyticsStore
    var cache: any Cache
    /// Rate-limit state shared by replicas (in Redis, with the cache); nil: each instance keeps its own.
    var rateLimits: (any RateLimitStore)?

    /// Opens every store `configuration` names, runs `body`, and closes them in reverse whether it returns or throws.
    ///
    /// Each store but the in-process ones is behind a ``DependencyGuard`` (breaker and bulkhead) whose events go to
    /// `metrics` and the log; Redis has one guard for the cache and the rate limits.
    static func with<Result>(
        _ configuration: GatewayConfiguration, metrics: GatewayMetrics, logger: Logger,
        _ body: (Stores) async throws -> Result
    ) async throws -> Result {
        // A time limit only for the stores across a network: an embedded one (SQLite, a directory) runs its calls
        // on threads that no cancellation stops, so a limit could only add failures.
        let guarded = { (name: String, isNetworked: Bool) in
            Self.dependencyGuard(
                name, configuration.storeGuards, isNetworked: isNetworked, metrics: metrics, logger: logger)
        }
        // File I/O of the object store runs on its own threads: a slow fsync must not stall SQLite or anything else.
        let files = NIOThreadPool(numberOfThreads: 8)
        files.start()
        return try await closing({ try await files.shutdownGracefully() }) {
            // One HTTP connection pool for the stores spoken to over HTTP (S3, ClickHouse).
            try await HTTPClient.withHTTPClient { http in
                try await withMetadataStore(configuration.metadata, logger: logger) { metadata in
                    try await withAnalyticsStore(configuration.analytics, http: http, logger: logger) { analytics in
                        try await withCache(configuration.cache, guard: guarded("cache", true)) { cache, rateLimits in
                            let objects = try await objectStore(configuration, files: files, http: http, logger: logger)
                            return try await body(
                                Stores(
                                    metadata: GuardedMetadataStore(
                                        metadata, guard: guarded("metadata", configuration.metadata.isNetworked)),
                                    objects: GuardedObjectStore(
                                        objects, guard: guarded("storage", configuration.storage.isNetworked)),
                                    analytics: GuardedAnalyticsStore(
                                        analytics, guard: guarded("analytics", configuration.analytics.isNetworked)),
                                    cache: cache, rateLimits: rateLimits))
                        }
                    }
                }
            }
        }
    }

    /// The guard of the store `name`: breaker changes go to the gauge and the log, refusals and retries to their
    /// counters.
    private static func dependencyGuard(
        _ name: String, _ settings: GatewayConfiguration.StoreGuards, isNetworked: Bool, metrics: GatewayMetrics,
        logger: Logger
    ) -> DependencyGuard {
        metrics.circuitBreakerState(dependency: name, state: .closed)
        return DependencyGuard(
            name: name, policy: settings.breaker, maxConcurrentCalls: settings.maxConcurrentCalls,
            callTimeout: isNetworked ? settings.callTimeout : nil, retry: settings.retry,
            events: { event in
                switch event {
                case .transition(let dependency, let transition):
                    metrics.circuitBreakerChanged(transition, dependency: dependency, logger: logger)
                case .rejected(let dependency, let reason):
                    metrics.dependencyRejected(dependency: dependency, reason: reason)
                case .retried(let dependency):
                    metrics.dependencyRetried(dependency: dependency)
                case .timedOut(let dependency):
                    logger.warning(
                        "store call timed out; cancelling it", metadata: ["dependency": "\(dependency)"])
                }
            })
    }

    /// Runs `body` with the metadata store `backend` names (a PostgreSQL pool runs meanwhile), then closes it.
    static func withMetadataStore<Result>(
        _ backend: GatewayConfiguration.MetadataBackend, logger: Logger,
        _ body: (any MetadataStore) async throws -> Result
    ) async throws -> Result {
        switch backend {
        case .sqlite(let path):
            let store = try await SQLiteMetadataStore.open(path: path, logger: logger)
            return try await closing(store.close) { try await body(store) }
        case .postgres(let location):
            let store = try await PostgresMetadataStore.open(location, logger: logger)
            return try await withThrowingTaskGroup(of: Void.self) { pool in
                pool.addTask { await store.client.run() }
                defer { pool.cancelAll() }
                return try await body(store)
            }
        }
    }

    private static func withAnalyticsStore<Result>(
        _ backend: GatewayConfiguration.AnalyticsBackend, http: HTTPClient, logger: Logger,
        _ body: (any AnalyticsStore) async throws -> Result
    ) async throws -> Result {
        switch backend {
        case .sqlite(let path):
            let store = try await SQLiteAnalyticsStore.open(path: path, logger: logger)
            return try await closing(store.close) { try await body(store) }
        case .clickHouse(let location):
            let client = ClickHouseClient(location: location, http: http, logger: logger)
            return try await body(try await ClickHouseAnalyticsStore.open(client: client, logger: logger))
        }
    }

    /// The cache, and with Redis the shared rate-limit store on the same connections.
    private static func withCache<Result>(
        _ backend: GatewayConfiguration.CacheBackend, guard guarded: DependencyGuard,
        _ body: (any Cache, (any RateLimitStore)?) async throws -> Result
    ) async throws -> Result {
        switch backend {
        case .inProcess(let maxBytes):
            return try await body(InProcessCache(capacityBytes: maxBytes), nil)
        case .redis(let location, let localMaxBytes, let localTimeToLive):
            let client = try RedisClient(location)
            return try await closing(client.close) {
                let redis = GuardedCache(RedisCache(client: client), guard: guarded)
                let cache: any Cache =
                    localTimeToLive > .zero && localMaxBytes > 0
                    ? TieredCache(
                        local: InProcessCache(capacityBytes: localMaxBytes), shared: redis,
                        localTimeToLive: localTimeToLive)
                    : redis
                return try await body(cache, GuardedRateLimitStore(RedisRateLimitStore(client: client), guard: guarded))
            }
        }
    }

    /// The object store: nothing to close (its threads and HTTP pool belong to the caller).
    private static func objectStore(
        _ configuration: GatewayConfiguration, files: NIOThreadPool, http: HTTPClient, logger: Logger
    ) async throws -> any ObjectStore {
        switch configuration.storage {
        case .directory(let path):
            return try await LocalObjectStore.open(root: path, threadPool: files)
        case .s3(let location):
            guard let credentials = configuration.storageCredentials else {
                throw ConfigurationError(problems: [.init(key: "storage.accessKeyId", message: "is needed for S3")])
            }
            return S3ObjectStore(location: location, credentials: credentials, http: http, logger: logger)
        }
    }
}

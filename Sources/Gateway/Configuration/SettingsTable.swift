import Clients
import KubinModel
import Logging

/// Every key the gateway reads, one row each, in the order `--help` lists them: the only place a key's name, default,
/// allowed values and meaning are written. ``GatewayConfiguration`` takes its values from these rows; ``rows`` lists
/// them for help, validation and printing.
package struct SettingsTable: Sendable {
    let configFile = Setting.optionalText(
        "config.file",
        "A JSON (.json) or YAML (.yaml, .yml) file of settings, nested by key. Command line only, or its environment "
            + "variable.")
    let httpHost = Setting.host("http.host", "127.0.0.1", "Address to listen on.")
    let httpPort = Setting.integer("http.port", "8080", in: 0...65535, "Port to listen on (0 picks a free port).")
    let httpIdleTimeout = Setting.duration(
        "http.idleTimeout", "75s", in: .seconds(1)...(.seconds(86400)),
        "Close a connection that sends nothing this long.")
    let httpHeaderTimeout = Setting.duration(
        "http.headerTimeout", "10s", in: .milliseconds(100)...(.seconds(600)),
        "A request head must arrive whole within this time of its first byte, or the client gets 408 and the "
            + "connection closes (slow clients cannot hold connections).")
    let httpMaxHeaderBytes = Setting.bytes(
        "http.maxHeaderBytes", "32KiB", in: 1024...(1 << 20), "The largest request header block (431 beyond).")
    let httpMaxURLBytes = Setting.bytes(
        "http.maxURLBytes", "8KiB", in: 256...(1 << 20), "The longest request URL (414 beyond).")
    let httpMaxBodyBytes = Setting.bytes(
        "http.maxBodyBytes", "64KiB", in: 0...(1 << 30),
        "The largest body of any request but an upload (413 beyond; uploads have uploads.maxBytes).")
    let httpMaxConnections = Setting.integer(
        "http.maxConnections", "10000", in: 1...1_000_000,
        "Connections served at once; the next one gets 503 and is closed.")
    let tlsCertificateFile = Setting.optionalText(
        "tls.certificateFile",
        "Serve HTTPS (TLS 1.2 or newer) with this PEM certificate chain; with tls.privateKeyFile. Both files are "
            + "re-read when they change, without dropping open connections.")
    let tlsPrivateKeyFile = Setting.optionalText("tls.privateKeyFile", "The PEM private key of the certificate.")
    let tlsReloadInterval = Setting.duration(
        "tls.reloadInterval", "5s", in: .seconds(1)...(.seconds(3600)),
        "How often the TLS files are checked for a renewal.")
    let tlsClientCAFile = Setting.optionalText(
        "tls.clientCAFile",
        "Ask clients for certificates signed by these PEM authorities: a caller with one (and no token) is an "
            + "internal caller of the tenant in its subject's O, named by its CN.")
    let tlsClientScopes = Setting.scopes(
        "tls.clientScopes", "snapshots:read",
        "The scopes of callers authenticated by a client certificate, comma-separated.")
    let metricsHost = Setting.host(
        "metrics.host", "127.0.0.1", "Address of the /metrics listener, apart from the API (keep it private).")
    let metricsPort = Setting.integer(
        "metrics.port", "9464", in: 0...65535, "Port of the /metrics listener (0 picks a free one).")
    let dataDirectory = Setting.text(
        "data.dir", "./kubin-data", "Directory of the embedded stores (SQLite metadata, archives).")
    let metadataURL = Setting.backend(
        "metadata.url",
        allowed: "empty (embedded SQLite), sqlite:<path> or postgres://user:password@host:port/database?sslmode=...",
        "Metadata store. Empty: SQLite at <data.dir>/metadata.sqlite. sqlite:<path> names another file; "
            + "postgres://user:password@host:port/database?sslmode=disable|prefer|require shares it between replicas.",
        GatewayConfiguration.MetadataBackend.named)
    let storageURL = Setting.backend(
        "storage.url",
        allowed: "empty (embedded directory), file:<path> or s3://bucket[/prefix]?endpoint=...&region=...&style=path",
        "Object store. Empty: the directory <data.dir>/storage. file:<path> names another directory; "
            + "s3://bucket[/prefix]?endpoint=...&region=... shares it between replicas.",
        GatewayConfiguration.StorageBackend.named)
    let analyticsURL = Setting.backend(
        "analytics.url",
        allowed: "empty (embedded SQLite), sqlite:<path> or clickhouse://user:password@host:port/database",
        "Analytics store (log lines, events). Empty: SQLite at <data.dir>/analytics.sqlite. sqlite:<path> names "
            + "another file; clickhouse://user:password@host:port/database shares it between replicas.",
        GatewayConfiguration.AnalyticsBackend.named)
    let cacheURL = Setting.backend(
        "cache.url",
        allowed: "empty or memory: (in-process), or redis://[user:password@]host[:port][/db] (rediss:// for TLS)",
        "Cache of answers. Empty or memory: in-process. redis://[user:password@]host[:port][/db] (rediss:// for TLS) "
            + "shares it, and the rate limits, between replicas.",
        GatewayConfiguration.SharedCache.named)
    let cacheMaxBytes = Setting.bytes(
        "cache.maxBytes", "64MiB", in: 0...(1 << 40),
        "Bound of the in-process cache, or of the local tier in front of Redis.")
    let cacheLocalTTL = Setting.duration(
        "cache.localTTL", "1s", in: .zero...(.seconds(3600)),
        "With Redis: how long a replica keeps an answer in its own memory (0s: never). Another replica's snapshot "
            + "deletion reaches this one's copies within this time.")
    let rateLimitQuery = Setting.rate(
        "rateLimit.query", "1000/1m",
        "Reads (GET, HEAD) each caller may make, or off. Held across replicas in Redis when cache.url is redis://.")
    let rateLimitUpload = Setting.rate("rateLimit.upload", "100/1m", "Uploads each caller may make, or off.")
    let rateLimitAdmin = Setting.rate("rateLimit.admin", "100/1m", "Deletions each caller may make, or off.")
    let rateLimitExpectedReplicas = Setting.integer(
        "rateLimit.expectedReplicas", "1", in: 1...1000,
        "Replicas sharing the limits: while Redis is unreachable each one allows rate ÷ this.")
    let corsAllowedOrigins = Setting.origins(
        "cors.allowedOrigins",
        "Origins whose scripts may call the gateway (the web UI), comma-separated, such as https://ui.example.com; "
            + "* for any; empty: none get CORS headers.")
    let corsMaxAge = Setting.duration(
        "cors.maxAge", "10m", in: .zero...(.seconds(86400)), "How long a browser may cache a preflight's answer.")
    let storageAccessKeyID = Setting.optionalText(
        "storage.accessKeyId", "With s3:// storage: the access key id (empty: AWS_ACCESS_KEY_ID).")
    let storageSecretAccessKey = Setting.optionalText(
        "storage.secretAccessKey", exposure: .secret,
        "With s3:// storage: the secret access key (empty: AWS_SECRET_ACCESS_KEY).")
    let storageSessionToken = Setting.optionalText(
        "storage.sessionToken", exposure: .secret,
        "With s3:// storage: a session token of temporary credentials (empty: AWS_SESSION_TOKEN).")
    let authJWKS = Setting.optionalText(
        "auth.jwks",
        "The identity provider's keys: a JWKS file path or an https:// URL (RS256, PS256, ES256, EdDSA). With "
            + "neither this nor auth.hs256.secret the gateway runs in development mode: loopback only, tokens signed "
            + "with a key of its own.")
    let authHS256Secret = Setting.optionalText(
        "auth.hs256.secret", exposure: .secret, "A shared secret (at least 32 bytes) that also accepts HS256 tokens.")
    let authIssuer = Setting.optionalText("auth.issuer", "The iss a token must carry (empty: any).")
    let authAudience = Setting.optionalText("auth.audience", "The aud a token must carry (empty: any).")
    let authTenantClaim = Setting.text("auth.tenantClaim", "tenant", "The token claim that names the tenant.")
    let authDisabled = Setting.flag(
        "auth.disabled", "false",
        "true: ask no credential, every caller is tenant default with every scope. Loopback only: for local tools "
            + "and for measuring what authentication costs.")
    let authLeeway = Setting.duration(
        "auth.leeway", "60s", in: .zero...(.seconds(3600)), "Clock skew allowed when checking exp, nbf and iat.")
    let authMaxTokenLifetime = Setting.duration(
        "auth.maxTokenLifetime", "24h", in: .seconds(60)...(.seconds(366 * 86400)),
        "The furthest away a token's expiry may be: a token claiming a longer life is refused.")
    let authJWKSCAFile = Setting.optionalText(
        "auth.jwksCAFile",
        "A PEM file of the certificate authorities trusted for an https:// JWKS (empty: the system's).")
    let authJWKSRefresh = Setting.duration(
        "auth.jwksRefresh", "5m", in: .seconds(1)...(.seconds(86400)), "How often the JWKS is reloaded.")
    let authJWKSMinRefresh = Setting.duration(
        "auth.jwksMinRefresh", "30s", in: .zero...(.seconds(3600)),
        "The least time between two JWKS reloads, however many tokens name an unknown kid.")
    let uploadsMaxConcurrent = Setting.integer(
        "uploads.maxConcurrent", "100", in: 1...100_000,
        "Uploads in flight per instance; the next one gets 429 at once.")
    let uploadsMaxConcurrentPerPrincipal = Setting.integer(
        "uploads.maxConcurrentPerPrincipal", "20", in: 1...100_000,
        "Uploads in flight per instance of one caller; the next one gets 429, so no caller takes every slot.")
    let uploadsBodyTimeout = Setting.duration(
        "uploads.bodyTimeout", "30s", in: .seconds(1)...(.seconds(3600)),
        "The longest an upload's body may take to start or pause between chunks; past it the upload gets 408 and "
            + "nothing of it is kept.")
    let uploadsMinBytesPerSecond = Setting.bytes(
        "uploads.minBytesPerSecond", "16KiB", in: 0...(1 << 30),
        "The least average rate of an upload's body (each this many bytes earn a second beyond uploads.bodyTimeout); "
            + "a slower body gets 408, so trickling clients cannot hold upload slots. 0: no rate, only the pause rule.")
    let uploadsMaxBytes = Setting.bytes(
        "uploads.maxBytes", "4GiB", in: 1...(1 << 50), "Largest upload accepted; larger ones get 413.")
    let uploadsRetryAfter = Setting.duration(
        "uploads.retryAfter", "1s", in: .seconds(1)...(.seconds(3600)),
        "Retry-After sent with a 429 upload refusal (rounded up to whole seconds).")
    let ingestConcurrency = Setting.integer(
        "ingest.concurrency", "2", in: 0...64,
        "Snapshots indexed at the same time by this instance (0: this instance indexes nothing).")
    let ingestLease = Setting.duration(
        "ingest.lease", "60s", in: .seconds(1)...(.seconds(3600)),
        "How long an indexing claim lasts without renewal; a crashed instance's jobs are retried after it.")
    let queryTimeout = Setting.duration(
        "query.timeout", "10s", in: .milliseconds(10)...(.seconds(600)), "Deadline of one /internal/api/v1 answer.")
    let queryBranchTimeout = Setting.duration(
        "query.branchTimeout", "5s", in: .milliseconds(10)...(.seconds(600)),
        "Deadline of each store query within an answer; an optional part past it is reported missing.")
    let storesBreakerWindow = Setting.duration(
        "stores.breakerWindow", "10s", in: .seconds(1)...(.seconds(3600)),
        "How far back each store's circuit breaker counts calls and failures.")
    let storesBreakerMinimumCalls = Setting.integer(
        "stores.breakerMinimumCalls", "20", in: 1...100_000,
        "Calls to a store within the window before its failure share can open the breaker.")
    let storesBreakerFailurePercent = Setting.integer(
        "stores.breakerFailurePercent", "50", in: 1...100,
        "The share of failed calls (percent) that opens a store's breaker: its calls then fail at once with 503 "
            + "dependency-unavailable and /readyz reports it down.")
    let storesBreakerSlowCall = Setting.duration(
        "stores.breakerSlowCall", "0s", in: .zero...(.seconds(600)),
        "A store call slower than this counts as failed (0s: speed does not count).")
    let storesBreakerCoolDown = Setting.duration(
        "stores.breakerCoolDown", "5s", in: .milliseconds(100)...(.seconds(3600)),
        "How long an open breaker refuses calls (its Retry-After) before it lets probe calls through.")
    let storesBreakerProbes = Setting.integer(
        "stores.breakerProbes", "3", in: 1...1000,
        "Probe calls a half-open breaker lets through; all of them succeeding close it, one failing opens it again.")
    let storesCallTimeout = Setting.duration(
        "stores.callTimeout", "10s", in: .milliseconds(10)...(.seconds(3600)),
        "How long one store call may take before it is given up (503 dependency-unavailable) and counted as failed; "
            + "downloads and uploads, which stream, are not limited.")
    let storesRetryAttempts = Setting.integer(
        "stores.retryAttempts", "2", in: 1...10,
        "Tries in all of a store call that may be repeated (reads, idempotent writes) when it fails; 1: no retry. "
            + "Retries wait a jittered back-off and stay within a budget of 20% of the calls in flight (at least 3).")
    let storesMaxConcurrentCalls = Setting.integer(
        "stores.maxConcurrentCalls", "512", in: 1...1_000_000,
        "Calls in flight to one store at most (a bulkhead); past it a call fails at once with 503.")
    let shutdownDrainDelay = Setting.duration(
        "shutdown.drainDelay", "0s", in: .zero...(.seconds(3600)),
        "On SIGTERM, keep accepting connections this long while /readyz answers 503, so load balancers stop "
            + "routing here first.")
    let shutdownGracePeriod = Setting.duration(
        "shutdown.gracePeriod", "30s", in: .zero...(.seconds(86400)),
        "After the drain delay, in-flight requests and uploads get this long to finish; then they are cancelled and "
            + "the process exits.")
    let readinessInterval = Setting.duration(
        "readiness.interval", "2s", in: .milliseconds(10)...(.seconds(3600)),
        "How often each dependency is checked for /readyz.")
    let readinessTimeout = Setting.duration(
        "readiness.timeout", "2s", in: .milliseconds(10)...(.seconds(600)),
        "A dependency check slower than this counts as failed.")
    let routingFile = Setting.optionalText(
        "routing.file",
        "The routing table: proxied routes and their upstreams (YAML or JSON; the README describes it). Re-read "
            + "when it changes and on SIGHUP; a bad new table is logged and the one in force stays.")
    let routingReloadInterval = Setting.duration(
        "routing.reloadInterval", "2s", in: .milliseconds(100)...(.seconds(3600)),
        "How often the routing file is checked for changes.")
    let routingTrustedProxies = Setting.optionalText(
        "routing.trustedProxies",
        "Addresses or CIDR ranges of the proxies in front of the gateway, comma-separated: from these peers, proxied "
            + "requests keep the X-Forwarded-* and Forwarded headers they bring (the gateway appends its own hop); "
            + "from any other peer those headers are replaced.")
    let routingDNSServer = Setting.optionalText(
        "routing.dnsServer",
        "The DNS server upstreams with `dns:` are resolved with, as ip:port ([ip]:port for IPv6); empty: the first "
            + "nameserver of /etc/resolv.conf, port 53.")
    let routingMaxConnectionsPerInstance = Setting.integer(
        "routing.maxConnectionsPerInstance", "256", in: 1...100_000,
        "Keep-alive connections the gateway opens to one upstream instance (more requests queue for them).")
    let logLevel = Setting.choice(
        "log.level", "info", Dictionary(uniqueKeysWithValues: Logger.Level.allCases.map { ("\($0)", $0) }),
        "The least severe log level written.")

    static let shared = SettingsTable()

    /// Every row, in the order declared above (read by reflection, so a new row is one declaration).
    package static let rows: [any SettingRow] = Mirror(reflecting: shared).children.compactMap {
        $0.value as? any SettingRow
    }
}

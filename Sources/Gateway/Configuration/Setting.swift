/// One configuration key: its name, default, meaning, and whether its value is a secret.
///
/// ``Setting/all`` is the single list of keys: `--help`, validation and the printed configuration all come from it.
package struct Setting: Sendable, Hashable {
    /// The dotted key, for example `uploads.maxConcurrent`.
    package var key: String
    /// The default value as text, empty when the key is unset by default.
    package var defaultValue: String
    /// What the key does and which values it takes.
    package var summary: String
    /// How the value is shown when printed.
    package var exposure: Exposure

    /// How a value may be shown in help, logs and error messages.
    package enum Exposure: Sendable, Hashable {
        /// Shown as it is.
        case plain
        /// A URL whose user-info password is replaced by `<redacted>`.
        case url
        /// Never shown.
        case secret
    }

    /// The environment variable that sets the key: `KUBIN_` + the key's words in upper snake case.
    package var environmentVariable: String {
        "KUBIN_" + words.map { $0.uppercased() }.joined(separator: "_")
    }

    /// The command-line flag that sets the key: `--` + the key's words in lower kebab case.
    package var flag: String { "--" + words.map { $0.lowercased() }.joined(separator: "-") }

    /// The key split into words: at dots and where a lowercase letter meets an uppercase one, as swift-configuration's
    /// environment and command-line providers encode keys.
    private var words: [String] {
        key.split(separator: ".").flatMap { component -> [String] in
            var words: [String] = []
            var current = ""
            var previousIsLower = false
            for character in component {
                if character.isUppercase, previousIsLower {
                    words.append(current)
                    current = ""
                }
                current.append(character)
                previousIsLower = character.isLowercase
            }
            words.append(current)
            return words
        }
    }

    /// `value` as it may be printed.
    package func display(_ value: String) -> String {
        switch exposure {
        case .plain: value
        case .secret: value.isEmpty ? "" : "<redacted>"
        case .url: Self.redactingPassword(in: value)
        }
    }

    /// `url` with the password of its user-info (`scheme://user:password@host`) replaced by `<redacted>`.
    package static func redactingPassword(in url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let authorityStart = schemeEnd.upperBound
        let authorityEnd = url[authorityStart...].firstIndex(where: { "/?#".contains($0) }) ?? url.endIndex
        guard let at = url[authorityStart..<authorityEnd].lastIndex(of: "@") else { return url }
        let userInfo = url[authorityStart..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return url[..<url.index(after: colon)] + "<redacted>" + url[at...]
    }
}

extension Setting {
    /// Every key the gateway reads, in the order `--help` lists them.
    package static let all: [Setting] = [
        .init(
            key: "config.file", defaultValue: "",
            summary: "A JSON (.json) or YAML (.yaml, .yml) file of settings, nested by key. Command line only, or "
                + "its environment variable.", exposure: .plain),
        .init(key: "http.host", defaultValue: "127.0.0.1", summary: "Address to listen on.", exposure: .plain),
        .init(
            key: "http.port", defaultValue: "8080", summary: "Port to listen on, 0 to 65535 (0 picks a free port).",
            exposure: .plain),
        .init(
            key: "http.idleTimeout", defaultValue: "75s",
            summary: "Close a connection that sends nothing for this long (a duration such as 500ms, 30s, 2m).",
            exposure: .plain),
        .init(
            key: "http.headerTimeout", defaultValue: "10s",
            summary: "A request head must arrive whole within this time of its first byte, or the client gets 408 "
                + "and the connection closes (slow clients cannot hold connections).", exposure: .plain),
        .init(
            key: "http.maxHeaderBytes", defaultValue: "32KiB",
            summary: "The largest request header block (431 beyond).", exposure: .plain),
        .init(
            key: "http.maxURLBytes", defaultValue: "8KiB", summary: "The longest request URL (414 beyond).",
            exposure: .plain),
        .init(
            key: "http.maxBodyBytes", defaultValue: "64KiB",
            summary: "The largest body of any request but an upload (413 beyond; uploads have uploads.maxBytes).",
            exposure: .plain),
        .init(
            key: "http.maxConnections", defaultValue: "10000",
            summary: "Connections served at once; the next one gets 503 and is closed.", exposure: .plain),
        .init(
            key: "tls.certificateFile", defaultValue: "",
            summary: "Serve HTTPS (TLS 1.2 or newer) with this PEM certificate chain; with tls.privateKeyFile. Both "
                + "files are re-read when they change, without dropping open connections.", exposure: .plain),
        .init(
            key: "tls.privateKeyFile", defaultValue: "", summary: "The PEM private key of the certificate.",
            exposure: .plain),
        .init(
            key: "tls.reloadInterval", defaultValue: "5s",
            summary: "How often the TLS files are checked for a renewal.",
            exposure: .plain),
        .init(
            key: "tls.clientCaFile", defaultValue: "",
            summary: "Ask clients for certificates signed by these PEM authorities: a caller with one (and no token) "
                + "is an internal caller of the tenant in its subject's O, named by its CN.", exposure: .plain),
        .init(
            key: "tls.clientScopes", defaultValue: "snapshots:read",
            summary: "The scopes of callers authenticated by a client certificate, comma-separated.", exposure: .plain),
        .init(
            key: "metrics.host", defaultValue: "127.0.0.1",
            summary: "Address of the /metrics listener, apart from the API (keep it private).", exposure: .plain),
        .init(
            key: "metrics.port", defaultValue: "9464", summary: "Port of the /metrics listener (0 picks a free one).",
            exposure: .plain),
        .init(
            key: "data.dir", defaultValue: "./kubin-data",
            summary: "Directory of the embedded stores (SQLite metadata, archives).", exposure: .plain),
        .init(
            key: "metadata.url", defaultValue: "",
            summary: "Metadata store. Empty: SQLite at <data.dir>/metadata.sqlite. sqlite:<path> names another file; "
                + "postgres://user:password@host:port/database?sslmode=disable|prefer|require shares it between "
                + "replicas.",
            exposure: .url),
        .init(
            key: "storage.url", defaultValue: "",
            summary: "Object store. Empty: the directory <data.dir>/storage. file:<path> names another directory.",
            exposure: .url),
        .init(
            key: "analytics.url", defaultValue: "",
            summary: "Analytics store (log lines, events). Empty: SQLite at <data.dir>/analytics.sqlite. sqlite:<path> "
                + "names another file.", exposure: .url),
        .init(
            key: "cache.url", defaultValue: "",
            summary: "Cache of answers. Empty or memory: in-process. redis://[user:password@]host[:port][/db] "
                + "(rediss:// for TLS) shares it between replicas.",
            exposure: .url),
        .init(
            key: "cache.maxBytes", defaultValue: "64MiB",
            summary: "Bound of the in-process cache, or of the local tier in front of Redis (a size such as 512KiB, "
                + "64MiB, 1GiB, or bytes).", exposure: .plain),
        .init(
            key: "cache.localTTL", defaultValue: "1s",
            summary: "With Redis: how long a replica keeps an answer in its own memory (0s: never). Another "
                + "replica's snapshot deletion reaches this one's copies within this time.", exposure: .plain),
        .init(
            key: "rateLimit.query", defaultValue: "1000/1m",
            summary: "Reads (GET, HEAD) each caller may make: <requests>/<duration>, or off. Held across replicas "
                + "in Redis when cache.url is redis://.", exposure: .plain),
        .init(
            key: "rateLimit.upload", defaultValue: "100/1m", summary: "Uploads each caller may make, or off.",
            exposure: .plain),
        .init(
            key: "rateLimit.admin", defaultValue: "100/1m", summary: "Deletions each caller may make, or off.",
            exposure: .plain),
        .init(
            key: "rateLimit.expectedReplicas", defaultValue: "1",
            summary: "Replicas sharing the limits: while Redis is unreachable each one allows rate ÷ this.",
            exposure: .plain),
        .init(
            key: "cors.allowedOrigins", defaultValue: "",
            summary: "Origins whose scripts may call the gateway (the web UI), comma-separated, such as "
                + "https://ui.example.com; * for any; empty: none get CORS headers.", exposure: .plain),
        .init(
            key: "cors.maxAge", defaultValue: "10m", summary: "How long a browser may cache a preflight's answer.",
            exposure: .plain),
        .init(
            key: "storage.accessKeyId", defaultValue: "",
            summary: "With s3:// storage: the access key id (empty: AWS_ACCESS_KEY_ID).", exposure: .plain),
        .init(
            key: "storage.secretAccessKey", defaultValue: "",
            summary: "With s3:// storage: the secret access key (empty: AWS_SECRET_ACCESS_KEY).", exposure: .secret),
        .init(
            key: "storage.sessionToken", defaultValue: "",
            summary: "With s3:// storage: a session token of temporary credentials (empty: AWS_SESSION_TOKEN).",
            exposure: .secret),
        .init(
            key: "auth.jwks", defaultValue: "",
            summary: "The identity provider's keys: a JWKS file path or an https:// URL (RS256, PS256, ES256, EdDSA). "
                + "With neither this nor auth.hs256.secret the gateway runs in development mode: loopback only, "
                + "tokens signed with a key of its own.", exposure: .plain),
        .init(
            key: "auth.hs256.secret", defaultValue: "",
            summary: "A shared secret (at least 32 bytes) that also accepts HS256 tokens.", exposure: .secret),
        .init(
            key: "auth.issuer", defaultValue: "", summary: "The iss a token must carry (empty: any).",
            exposure: .plain),
        .init(
            key: "auth.audience", defaultValue: "", summary: "The aud a token must carry (empty: any).",
            exposure: .plain),
        .init(
            key: "auth.tenantClaim", defaultValue: "tenant", summary: "The token claim that names the tenant.",
            exposure: .plain),
        .init(
            key: "auth.disabled", defaultValue: "false",
            summary: "true: ask no credential, every caller is tenant default with every scope. Loopback only: for "
                + "local tools and for measuring what authentication costs.", exposure: .plain),
        .init(
            key: "auth.leeway", defaultValue: "60s", summary: "Clock skew allowed when checking exp, nbf and iat.",
            exposure: .plain),
        .init(
            key: "auth.jwksCaFile", defaultValue: "",
            summary: "A PEM file of the certificate authorities trusted for an https:// JWKS (empty: the system's).",
            exposure: .plain),
        .init(
            key: "auth.jwksRefresh", defaultValue: "5m", summary: "How often the JWKS is reloaded.",
            exposure: .plain),
        .init(
            key: "auth.jwksMinRefresh", defaultValue: "30s",
            summary: "The least time between two JWKS reloads, however many tokens name an unknown kid.",
            exposure: .plain),
        .init(
            key: "uploads.maxConcurrent", defaultValue: "100",
            summary: "Uploads in flight per instance, 1 to 100000; the next one gets 429 at once.", exposure: .plain),
        .init(
            key: "uploads.maxBytes", defaultValue: "4GiB", summary: "Largest upload accepted; larger ones get 413.",
            exposure: .plain),
        .init(
            key: "uploads.retryAfter", defaultValue: "1s",
            summary: "Retry-After sent with a 429 upload refusal (rounded up to whole seconds).", exposure: .plain),
        .init(
            key: "ingest.concurrency", defaultValue: "2",
            summary: "Snapshots indexed at the same time by this instance, 0 to 64 (0: this instance indexes nothing).",
            exposure: .plain),
        .init(
            key: "ingest.lease", defaultValue: "60s",
            summary:
                "How long an indexing claim lasts without renewal; a crashed instance's jobs are retried after it.",
            exposure: .plain),
        .init(
            key: "query.timeout", defaultValue: "10s",
            summary: "Deadline of one /internal/api/v1 answer.", exposure: .plain),
        .init(
            key: "query.branchTimeout", defaultValue: "5s",
            summary: "Deadline of each store query within an answer; an optional part past it is reported missing.",
            exposure: .plain),
        .init(
            key: "shutdown.drainDelay", defaultValue: "0s",
            summary: "On SIGTERM, keep accepting connections this long while /readyz answers 503, so load balancers "
                + "stop routing here first.", exposure: .plain),
        .init(
            key: "shutdown.gracePeriod", defaultValue: "30s",
            summary: "After the drain delay, in-flight requests and uploads get this long to finish; then they are "
                + "cancelled and the process exits.", exposure: .plain),
        .init(
            key: "readiness.interval", defaultValue: "2s",
            summary: "How often each dependency is checked for /readyz.", exposure: .plain),
        .init(
            key: "readiness.timeout", defaultValue: "2s",
            summary: "A dependency check slower than this counts as failed.", exposure: .plain),
        .init(
            key: "log.level", defaultValue: "info",
            summary: "trace, debug, info, notice, warning, error or critical.", exposure: .plain),
    ]
}

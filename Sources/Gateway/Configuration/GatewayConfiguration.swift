import Clients
import KubinModel
import Logging
import Orchestrators

/// Everything a gateway instance is configured with, validated.
///
/// Built by ``load(arguments:environment:)`` from, highest precedence first: the command line, `KUBIN_*` environment
/// variables, the file named by `config.file`, and the defaults of ``Setting/all``.
package struct GatewayConfiguration: Sendable {
    /// The HTTP listener.
    package struct HTTP: Sendable {
        /// Address to listen on.
        package var host = "127.0.0.1"
        /// Port to listen on; 0 picks a free one.
        package var port = 8080
        /// Connections silent this long are closed.
        package var idleTimeout: Duration = .seconds(75)
        /// A request head must arrive whole within this time of its first byte (408 otherwise).
        package var headerTimeout: Duration = .seconds(10)
        /// The largest header block (431 beyond).
        package var maxHeaderBytes = 32 << 10
        /// The longest URL (414 beyond).
        package var maxURLBytes = 8 << 10
        /// The largest body of a request that is not an upload (413 beyond).
        package var maxBodyBytes: Int64 = 64 << 10
        /// Connections served at once (503 beyond).
        package var maxConnections = 10_000
    }

    /// The listener of `/metrics`, apart from the API so that it need not be public.
    package struct Metrics: Sendable {
        /// Address to listen on.
        package var host = "127.0.0.1"
        /// Port to listen on; 0 picks a free one.
        package var port = 9464
    }

    /// Where metadata lives.
    package enum MetadataBackend: Sendable, Equatable {
        /// A SQLite file.
        case sqlite(path: String)
        /// A PostgreSQL database shared by replicas.
        case postgres(PostgresLocation)
    }

    /// Where archives live.
    package enum StorageBackend: Sendable, Equatable {
        /// A local directory.
        case directory(path: String)
        /// An S3-compatible bucket shared by replicas (credentials from ``storageCredentials``, else from
        /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
        case s3(S3Location)
    }

    /// S3 credentials given as settings (`storage.accessKeyId`, `storage.secretAccessKey`, `storage.sessionToken`);
    /// nil when the settings name none, and the standard `AWS_*` variables are used.
    package var storageCredentials: SigV4Signer.Credentials?

    /// Where log lines and events live.
    package enum AnalyticsBackend: Sendable, Equatable {
        /// A SQLite file.
        case sqlite(path: String)
        /// A ClickHouse server shared by replicas (its HTTP interface).
        case clickHouse(ClickHouseLocation)
    }

    /// Indexing of stored snapshots.
    package struct Ingest: Sendable {
        /// Snapshots indexed at once.
        package var concurrency = 2
        /// How long a claim lasts without renewal.
        package var lease: Duration = .seconds(60)
    }

    /// Answers of `/internal/api/v1`.
    package struct Query: Sendable {
        /// Deadline of one answer.
        package var timeout: Duration = .seconds(10)
        /// Deadline of each store query within it.
        package var branchTimeout: Duration = .seconds(5)
    }

    /// TLS termination on the API listener.
    package struct TLS: Sendable {
        /// The certificate chain, PEM.
        package var certificateFile: String
        /// The private key, PEM.
        package var privateKeyFile: String
        /// How often the two files are checked for a renewal.
        package var reloadInterval: Duration = .seconds(5)
        /// A PEM of the authorities whose client certificates authenticate internal callers; nil: none asked for.
        package var clientCAFile: String?
        /// The scopes of callers authenticated by a client certificate.
        package var clientScopes: Set<Scope> = [.snapshotsRead]

        /// TLS from the certificate chain and key files.
        package init(certificateFile: String, privateKeyFile: String) {
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
        }
    }

    /// Rates per route class, per principal.
    package struct RateLimits: Sendable {
        /// The rate of each class; a class without one is unlimited.
        package var rates: [RateLimiter.RouteClass: GCRA] = [
            .query: GCRA(limit: 1000, period: .seconds(60)), .upload: GCRA(limit: 100, period: .seconds(60)),
            .admin: GCRA(limit: 100, period: .seconds(60)),
        ]
        /// Replicas sharing the limit: each limits to rate ÷ this while the shared store (Redis) is unreachable.
        package var expectedReplicas = 1
    }

    /// Cross-origin access for browsers.
    package struct CORS: Sendable {
        /// Origins (`scheme://host[:port]`) whose scripts may call; `*` for any; empty: none.
        package var allowedOrigins: Set<String> = []
        /// How long a browser may cache a preflight's answer.
        package var maxAge: Duration = .seconds(600)
    }

    /// Where cached answers live.
    package enum CacheBackend: Sendable, Equatable {
        /// This process's memory, bounded in bytes.
        case inProcess(maxBytes: Int)
        /// A Redis server shared by replicas (its own memory policy bounds it), with an in-process tier of
        /// `localMaxBytes` in front whose entries live at most `localTimeToLive` (zero: no local tier).
        case redis(RedisLocation, localMaxBytes: Int, localTimeToLive: Duration)
    }

    /// Who may call: the identity provider's keys and the claims a token must carry.
    package struct Auth: Sendable {
        /// Where the JWKS is: a file path or an `https://` URL; nil when none is configured.
        package var jwks: String?
        /// An HS256 shared secret (at least 32 bytes); nil when none is configured.
        package var hs256Secret: String?
        /// The `iss` a token must carry; nil accepts any.
        package var issuer: String?
        /// The `aud` a token must carry (one of its values); nil accepts any.
        package var audience: String?
        /// The claim that names the caller's tenant.
        package var tenantClaim = "tenant"
        /// Tolerance for clock skew in `exp`, `nbf` and `iat`.
        package var leeway: Duration = .seconds(60)
        /// A PEM file of the certificate authorities trusted for an `https://` JWKS (nil: the system's).
        package var jwksCAFile: String?
        /// How often the JWKS is reloaded.
        package var jwksRefreshInterval: Duration = .seconds(300)
        /// The least time between two reloads, however many unknown `kid`s arrive.
        package var jwksMinimumRefreshInterval: Duration = .seconds(30)

        /// No credential asked at all: every caller is tenant `default` with every scope (loopback only; for
        /// local tools and for measuring what authentication costs).
        package var isDisabled = false

        /// No identity provider: the gateway signs its own development tokens and listens on loopback only.
        package var isDevelopment: Bool { jwks == nil && hs256Secret == nil }
    }

    /// Upload limits.
    package struct Uploads: Sendable {
        /// Uploads in flight per instance.
        package var maxConcurrent = 100
        /// Largest upload in bytes.
        package var maxBytes: Int64 = 4 << 30
        /// Retry-After of a refused upload.
        package var retryAfter: Duration = .seconds(1)
    }

    /// Shutdown timing.
    package struct Shutdown: Sendable {
        /// How long `/readyz` fails before the listener closes.
        package var drainDelay: Duration = .zero
        /// How long in-flight work may take after the listener closes.
        package var gracePeriod: Duration = .seconds(30)
    }

    /// Readiness checking.
    package struct Readiness: Sendable {
        /// Time between checks of one dependency.
        package var interval: Duration = .seconds(2)
        /// A check slower than this counts as failed.
        package var timeout: Duration = .seconds(2)
    }

    /// The listener.
    package var http = HTTP()
    /// Directory of the embedded stores.
    package var dataDirectory = "./kubin-data"
    /// The metadata store.
    package var metadata = MetadataBackend.sqlite(path: "./kubin-data/metadata.sqlite")
    /// The object store.
    package var storage = StorageBackend.directory(path: "./kubin-data/storage")
    /// The analytics store.
    package var analytics = AnalyticsBackend.sqlite(path: "./kubin-data/analytics.sqlite")
    /// Indexing.
    package var ingest = Ingest()
    /// Internal answers.
    package var query = Query()
    /// The cache.
    package var cache = CacheBackend.inProcess(maxBytes: 64 << 20)
    /// Upload limits.
    package var uploads = Uploads()
    /// Authentication.
    package var auth = Auth()
    /// Cross-origin access.
    package var cors = CORS()
    /// Rate limits.
    package var rateLimits = RateLimits()
    /// TLS termination; nil: plain HTTP (behind a terminating proxy, or on loopback).
    package var tls: TLS?
    /// The metrics listener.
    package var metrics = Metrics()
    /// Shutdown timing.
    package var shutdown = Shutdown()
    /// Readiness checking.
    package var readiness = Readiness()
    /// Least severe log level written.
    package var logLevel = Logger.Level.info
    /// Every setting's effective value as text, for ``printableSettings``.
    package var rawValues: [String: String] = [:]

    /// The defaults, with every embedded store under `dataDirectory`.
    package init(dataDirectory: String = "./kubin-data") {
        self.dataDirectory = dataDirectory
        self.metadata = .sqlite(path: dataDirectory + "/metadata.sqlite")
        self.storage = .directory(path: dataDirectory + "/storage")
        self.analytics = .sqlite(path: dataDirectory + "/analytics.sqlite")
    }

    /// Every setting with its effective value, secrets redacted: what the gateway logs at start.
    package var printableSettings: [(key: String, value: String)] {
        Setting.all.map { setting in (setting.key, setting.display(rawValues[setting.key] ?? setting.defaultValue)) }
    }
}

extension GatewayConfiguration {
    /// Parses and validates `raw` (key → text; missing keys take their defaults), reporting every bad key at once.
    package init(raw: [String: String]) throws(ConfigurationError) {
        var parser = SettingsParser(raw: raw)
        let dataDirectory = parser.text("data.dir")
        self.init(dataDirectory: dataDirectory)
        http.host = parser.host("http.host")
        http.port = parser.integer("http.port", in: 0...65535)
        http.idleTimeout = parser.duration("http.idleTimeout", in: .seconds(1)...(.seconds(86400)))
        http.headerTimeout = parser.duration("http.headerTimeout", in: .milliseconds(100)...(.seconds(600)))
        http.maxHeaderBytes = Int(parser.bytes("http.maxHeaderBytes", in: 1024...(1 << 20)))
        http.maxURLBytes = Int(parser.bytes("http.maxURLBytes", in: 256...(1 << 20)))
        http.maxBodyBytes = parser.bytes("http.maxBodyBytes", in: 0...(1 << 30))
        http.maxConnections = parser.integer("http.maxConnections", in: 1...1_000_000)
        metrics.host = parser.host("metrics.host")
        metrics.port = parser.integer("metrics.port", in: 0...65535)
        let metadataURL = parser.peek("metadata.url")
        metadata = parser.url(
            "metadata.url", default: metadata,
            allowed: "empty (embedded SQLite), sqlite:<path> or postgres://user:password@host:port/database?sslmode=..."
        ) { scheme, path in
            switch scheme {
            case "sqlite": path.isEmpty ? nil : .sqlite(path: path)
            case "postgres", "postgresql": PostgresLocation(url: metadataURL).map(MetadataBackend.postgres)
            default: nil
            }
        }
        let storageURL = parser.peek("storage.url")
        storage = parser.url(
            "storage.url", default: storage,
            allowed:
                "empty (embedded directory), file:<path> or s3://bucket[/prefix]?endpoint=...&region=...&style=path"
        ) { scheme, path in
            switch scheme {
            case "file": path.isEmpty ? nil : .directory(path: path)
            case "s3": S3Location(url: storageURL).map(StorageBackend.s3)
            default: nil
            }
        }
        let analyticsURL = parser.peek("analytics.url")
        analytics = parser.url(
            "analytics.url", default: analytics,
            allowed: "empty (embedded SQLite), sqlite:<path> or clickhouse://user:password@host:port/database"
        ) { scheme, path in
            switch scheme {
            case "sqlite": path.isEmpty ? nil : .sqlite(path: path)
            case "clickhouse", "clickhouses": ClickHouseLocation(url: analyticsURL).map(AnalyticsBackend.clickHouse)
            default: nil
            }
        }
        let cacheBytes = Int(parser.bytes("cache.maxBytes", in: 0...(1 << 40)))
        let cacheURL = parser.peek("cache.url")
        let localTimeToLive = parser.duration("cache.localTTL", in: .zero...(.seconds(3600)))
        cache = parser.url(
            "cache.url", default: .inProcess(maxBytes: cacheBytes),
            allowed: "empty or memory: (in-process), or redis://[user:password@]host[:port][/db] (rediss:// for TLS)"
        ) { scheme, _ in
            switch scheme {
            case "memory": .inProcess(maxBytes: cacheBytes)
            case "redis", "rediss":
                RedisLocation(url: cacheURL).map {
                    .redis($0, localMaxBytes: cacheBytes, localTimeToLive: localTimeToLive)
                }
            default: nil
            }
        }
        uploads.maxConcurrent = parser.integer("uploads.maxConcurrent", in: 1...100_000)
        uploads.maxBytes = parser.bytes("uploads.maxBytes", in: 1...(1 << 50))
        uploads.retryAfter = parser.duration("uploads.retryAfter", in: .seconds(1)...(.seconds(3600)))
        ingest.concurrency = parser.integer("ingest.concurrency", in: 0...64)
        ingest.lease = parser.duration("ingest.lease", in: .seconds(1)...(.seconds(3600)))
        query.timeout = parser.duration("query.timeout", in: .milliseconds(10)...(.seconds(600)))
        query.branchTimeout = parser.duration("query.branchTimeout", in: .milliseconds(10)...(.seconds(600)))
        for routeClass in RateLimiter.RouteClass.allCases {
            rateLimits.rates[routeClass] = parser.rate("rateLimit.\(routeClass.rawValue)")
        }
        rateLimits.expectedReplicas = parser.integer("rateLimit.expectedReplicas", in: 1...1000)
        cors.allowedOrigins = parser.origins("cors.allowedOrigins")
        cors.maxAge = parser.duration("cors.maxAge", in: .zero...(.seconds(86400)))
        shutdown.drainDelay = parser.duration("shutdown.drainDelay", in: .zero...(.seconds(3600)))
        shutdown.gracePeriod = parser.duration("shutdown.gracePeriod", in: .zero...(.seconds(86400)))
        readiness.interval = parser.duration("readiness.interval", in: .milliseconds(10)...(.seconds(3600)))
        readiness.timeout = parser.duration("readiness.timeout", in: .milliseconds(10)...(.seconds(600)))
        logLevel = parser.choice(
            "log.level", Dictionary(uniqueKeysWithValues: Logger.Level.allCases.map { ("\($0)", $0) }))
        let accessKey = parser.text("storage.accessKeyId", allowEmpty: true)
        let secretKey = parser.text("storage.secretAccessKey", allowEmpty: true)
        let sessionToken = parser.text("storage.sessionToken", allowEmpty: true)
        if accessKey.isEmpty != secretKey.isEmpty {
            parser.refuse(
                accessKey.isEmpty ? "storage.accessKeyId" : "storage.secretAccessKey",
                expected: "set together with \(accessKey.isEmpty ? "storage.secretAccessKey" : "storage.accessKeyId")")
        } else if !accessKey.isEmpty {
            storageCredentials = SigV4Signer.Credentials(
                accessKeyID: accessKey, secretAccessKey: secretKey,
                sessionToken: sessionToken.isEmpty ? nil : sessionToken)
        }
        let certificateFile = parser.text("tls.certificateFile", allowEmpty: true)
        let privateKeyFile = parser.text("tls.privateKeyFile", allowEmpty: true)
        let reloadInterval = parser.duration("tls.reloadInterval", in: .seconds(1)...(.seconds(3600)))
        let clientCAFile = parser.text("tls.clientCaFile", allowEmpty: true)
        let clientScopes = parser.scopes("tls.clientScopes")
        if certificateFile.isEmpty != privateKeyFile.isEmpty {
            parser.refuse(
                certificateFile.isEmpty ? "tls.certificateFile" : "tls.privateKeyFile",
                expected: "set together with \(certificateFile.isEmpty ? "tls.privateKeyFile" : "tls.certificateFile")")
        } else if !certificateFile.isEmpty {
            var settings = TLS(certificateFile: certificateFile, privateKeyFile: privateKeyFile)
            settings.reloadInterval = reloadInterval
            settings.clientCAFile = clientCAFile.isEmpty ? nil : clientCAFile
            settings.clientScopes = clientScopes
            tls = settings
        } else if !clientCAFile.isEmpty {
            parser.refuse("tls.clientCaFile", expected: "TLS (tls.certificateFile and tls.privateKeyFile) to be set")
        }
        let jwks = parser.text("auth.jwks", allowEmpty: true)
        if !jwks.isEmpty {
            if jwks.hasPrefix("http://") {
                parser.refuse("auth.jwks", expected: "a file path or an https:// URL (keys are never fetched in clear)")
            }
            auth.jwks = jwks
        }
        let secret = parser.text("auth.hs256.secret", allowEmpty: true)
        if !secret.isEmpty {
            if secret.utf8.count < 32 { parser.refuse("auth.hs256.secret", expected: "at least 32 bytes") }
            auth.hs256Secret = secret
        }
        auth.issuer = Optional(parser.text("auth.issuer", allowEmpty: true)).flatMap { $0.isEmpty ? nil : $0 }
        auth.audience = Optional(parser.text("auth.audience", allowEmpty: true)).flatMap { $0.isEmpty ? nil : $0 }
        auth.tenantClaim = parser.text("auth.tenantClaim")
        auth.leeway = parser.duration("auth.leeway", in: .zero...(.seconds(3600)))
        let caFile = parser.text("auth.jwksCaFile", allowEmpty: true)
        auth.jwksCAFile = caFile.isEmpty ? nil : caFile
        auth.jwksRefreshInterval = parser.duration("auth.jwksRefresh", in: .seconds(1)...(.seconds(86400)))
        auth.jwksMinimumRefreshInterval = parser.duration("auth.jwksMinRefresh", in: .zero...(.seconds(3600)))
        auth.isDisabled = parser.choice("auth.disabled", ["false": false, "true": true])
        if auth.isDisabled, !SettingValues.isLoopback(http.host) {
            parser.refuse(
                "auth.disabled", expected: "false while http.host (\(http.host)) is not a loopback address")
        }
        if auth.isDevelopment, !SettingValues.isLoopback(http.host) {
            parser.refuse(
                "http.host",
                expected: "a loopback address (127.0.0.1, ::1 or localhost) while no identity provider is configured: "
                    + "set KUBIN_AUTH_JWKS (a JWKS file or https URL) or KUBIN_AUTH_HS256_SECRET to listen on "
                    + "\(http.host)")
        }
        _ = parser.text("config.file", allowEmpty: true)
        rawValues = parser.effective
        if !parser.problems.isEmpty { throw ConfigurationError(problems: parser.problems) }
    }
}

/// Turns raw texts into typed values, collecting a problem (and returning the default) for each bad one.
private struct SettingsParser {
    private let raw: [String: String]
    private(set) var problems: [ConfigurationError.Problem] = []
    private(set) var effective: [String: String] = [:]

    init(raw: [String: String]) { self.raw = raw }

    private mutating func value(_ key: String) -> (setting: Setting, text: String) {
        guard let setting = Setting.all.first(where: { $0.key == key }) else {
            preconditionFailure("setting \(key) is not in Setting.all")
        }
        let text = raw[key] ?? setting.defaultValue
        effective[key] = text
        return (setting, text)
    }

    /// Refuses the value already read for `key` (a rule that involves other keys).
    mutating func refuse(_ key: String, expected: String) {
        let (setting, text) = value(key)
        refuse(setting, text, expected: expected)
    }

    private mutating func refuse(_ setting: Setting, _ text: String, expected: String) {
        problems.append(
            .init(
                key: setting.key,
                message: "'\(setting.display(text))' is not allowed; expected \(expected) "
                    + "(set by \(setting.environmentVariable) or \(setting.flag); default '\(setting.defaultValue)')"))
    }

    mutating func text(_ key: String, allowEmpty: Bool = false) -> String {
        let (setting, text) = value(key)
        if !allowEmpty, text.trimmingCharacters(in: .whitespaces).isEmpty {
            refuse(setting, text, expected: "a non-empty value")
            return setting.defaultValue
        }
        return text
    }

    mutating func host(_ key: String) -> String {
        let (setting, text) = value(key)
        guard SettingValues.isHost(text) else {
            refuse(setting, text, expected: "an IPv4 or IPv6 address or a host name")
            return setting.defaultValue
        }
        return text
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>) -> Int {
        let (setting, text) = value(key)
        guard let number = SettingValues.integer(text), range.contains(number) else {
            refuse(setting, text, expected: "a whole number from \(range.lowerBound) to \(range.upperBound)")
            return SettingValues.integer(setting.defaultValue)!
        }
        return number
    }

    mutating func bytes(_ key: String, in range: ClosedRange<Int64>) -> Int64 {
        let (setting, text) = value(key)
        guard let bytes = SettingValues.bytes(text), range.contains(bytes) else {
            refuse(
                setting, text,
                expected: "a size from \(range.lowerBound) to \(range.upperBound) bytes, such as 512KiB, 64MiB or 4GiB")
            return SettingValues.bytes(setting.defaultValue)!
        }
        return bytes
    }

    mutating func duration(_ key: String, in range: ClosedRange<Duration>) -> Duration {
        let (setting, text) = value(key)
        guard let duration = SettingValues.duration(text), range.contains(duration) else {
            refuse(
                setting, text,
                expected: "a duration from \(range.lowerBound) to \(range.upperBound), such as 500ms, 30s or 2m")
            return SettingValues.duration(setting.defaultValue)!
        }
        return duration
    }

    /// A comma-separated list of scopes.
    mutating func scopes(_ key: String) -> Set<Scope> {
        let (setting, text) = value(key)
        guard let scopes = Scope.list(text) else {
            refuse(setting, text, expected: "a comma-separated list of " + Scope.names)
            return []
        }
        return scopes
    }

    /// A rate, `<requests>/<duration>` such as `1000/1m`, or `off` (nil).
    mutating func rate(_ key: String) -> GCRA? {
        let (setting, text) = value(key)
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "off" { return nil }
        let parts = trimmed.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let limit = Int(parts[0]), (1...10_000_000).contains(limit),
            let period = SettingValues.duration(parts[1]), (.seconds(1)...(.seconds(86400))).contains(period)
        else {
            refuse(setting, text, expected: "<requests>/<duration> such as 1000/1m or 20/1s (1s to 24h), or off")
            return nil
        }
        return GCRA(limit: limit, period: period)
    }

    /// A comma-separated list of origins (`https://ui.example.com`, `http://localhost:3000`) or `*`.
    mutating func origins(_ key: String) -> Set<String> {
        let (setting, text) = value(key)
        let origins = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let bad = origins.filter { !SettingValues.isOrigin($0) }
        guard bad.isEmpty else {
            refuse(
                setting, text,
                expected: "a comma-separated list of origins such as https://ui.example.com or http://localhost:3000 "
                    + "(scheme, host and port only), or *")
            return []
        }
        return Set(origins)
    }

    mutating func choice<Value>(_ key: String, _ choices: [String: Value]) -> Value {
        let (setting, text) = value(key)
        guard let chosen = choices[text.lowercased()] else {
            refuse(setting, text, expected: "one of " + choices.keys.sorted().joined(separator: ", "))
            return choices[setting.defaultValue]!
        }
        return chosen
    }

    /// An empty value keeps `defaultValue`; otherwise `build(scheme, rest)` must accept `scheme:rest`.
    /// The raw text of `key` without recording it (for a backend that needs the whole URL).
    func peek(_ key: String) -> String { raw[key] ?? Setting.all.first { $0.key == key }?.defaultValue ?? "" }

    mutating func url<Backend>(
        _ key: String, default defaultValue: Backend, allowed: String, build: (String, String) -> Backend?
    ) -> Backend {
        let (setting, text) = value(key)
        if text.isEmpty { return defaultValue }
        guard let colon = text.firstIndex(of: ":") else {
            refuse(setting, text, expected: allowed)
            return defaultValue
        }
        var rest = text[text.index(after: colon)...]
        if rest.hasPrefix("//") { rest = rest.dropFirst(2) }
        guard let backend = build(text[..<colon].lowercased(), String(rest)) else {
            refuse(setting, text, expected: allowed)
            return defaultValue
        }
        return backend
    }
}

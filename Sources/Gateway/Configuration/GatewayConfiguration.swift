import Clients
import Foundation
import KubinModel
import Logging
import Orchestrators

/// Everything a gateway instance is configured with, validated.
///
/// Every value comes from a row of ``SettingsTable`` through ``init(raw:environment:)``: ``load(arguments:environment:)``
/// gathers the texts from, highest precedence first, the command line, `KUBIN_*` environment variables and the file
/// named by `config.file`; tests pass their own texts. The defaults are the table's.
package struct GatewayConfiguration: Sendable {
    /// The HTTP listener.
    package struct HTTP: Sendable {
        package var host: String
        /// 0 picks a free port.
        package var port: Int
        /// Connections silent this long are closed.
        package var idleTimeout: Duration
        /// A request head must arrive whole within this time of its first byte (408 otherwise).
        package var headerTimeout: Duration
        /// The largest header block (431 beyond).
        package var maxHeaderBytes: Int
        /// The longest URL (414 beyond).
        package var maxURLBytes: Int
        /// The largest body of a request that is not an upload (413 beyond).
        package var maxBodyBytes: Int64
        /// Connections served at once (503 beyond).
        package var maxConnections: Int
    }

    /// The listener of `/metrics`, apart from the API so that it need not be public.
    package struct Metrics: Sendable {
        package var host: String
        /// 0 picks a free port.
        package var port: Int
    }

    /// Indexing of stored snapshots.
    package struct Ingest: Sendable {
        /// Snapshots indexed at once.
        package var concurrency: Int
        /// How long a claim lasts without renewal.
        package var lease: Duration
    }

    /// Answers of `/internal/api/v1`.
    package struct Query: Sendable {
        /// Deadline of one answer.
        package var timeout: Duration
        /// Deadline of each store query within it.
        package var branchTimeout: Duration
    }

    /// The guard of each store (``DependencyGuard``): its breaker and bulkhead.
    package struct StoreGuards: Sendable {
        package var breaker: BreakerPolicy
        /// Calls in flight to one store at most.
        package var maxConcurrentCalls: Int
        /// Tries of a repeatable call.
        package var retry: RetryPolicy
        /// How long one call may take.
        package var callTimeout: Duration
    }

    /// Upload limits.
    package struct Uploads: Sendable {
        /// Uploads in flight per instance.
        package var maxConcurrent: Int
        /// Uploads of one principal in flight per instance.
        package var maxConcurrentPerPrincipal: Int
        package var maxBytes: Int64
        /// Retry-After of a refused upload.
        package var retryAfter: Duration
        /// The longest a body may take to start or pause (408 beyond).
        package var bodyTimeout: Duration
        /// The least average rate of a body (408 below); 0: none.
        package var minBytesPerSecond: Int64
    }

    /// Shutdown timing.
    package struct Shutdown: Sendable {
        /// How long `/readyz` fails before the listener closes.
        package var drainDelay: Duration
        /// How long in-flight work may take after the listener closes.
        package var gracePeriod: Duration
    }

    /// Readiness checking.
    package struct Readiness: Sendable {
        /// Time between checks of one dependency.
        package var interval: Duration
        /// A check slower than this counts as failed.
        package var timeout: Duration
    }

    /// Proxied routes.
    package struct Routing: Sendable {
        /// The routing file; nil: no proxied routes.
        package var file: String?
        /// The table the file held at start (empty without a file).
        package var table: RoutingTable
        package var reloadInterval: Duration
        package var maxConnectionsPerInstance: Int
        /// The DNS server of discovery; nil: the system's (read from /etc/resolv.conf when discovery starts).
        package var dnsServer: (host: String, port: Int)?
        /// Peers whose forwarding headers are kept.
        var trustedProxies: [AddressRange]
    }

    package var http: HTTP
    /// Directory of the embedded stores.
    package var dataDirectory: String
    package var metadata: MetadataBackend
    package var storage: StorageBackend
    /// S3 credentials: of the settings, else of `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`;
    /// nil when neither names a pair (allowed only without S3).
    package var storageCredentials: SigV4Signer.Credentials?
    package var analytics: AnalyticsBackend
    package var ingest: Ingest
    package var query: Query
    package var storeGuards: StoreGuards
    package var cache: CacheBackend
    package var uploads: Uploads
    package var auth: Auth
    package var cors: CORS
    package var rateLimits: RateLimits
    /// TLS termination; nil: plain HTTP (behind a terminating proxy, or on loopback).
    package var tls: TLS?
    package var metrics: Metrics
    package var shutdown: Shutdown
    package var readiness: Readiness
    package var routing: Routing
    /// Least severe log level written.
    package var logLevel: Logger.Level
    /// The text of every key that was given (the others took their defaults), for ``printableSettings``.
    package var rawValues: [String: String]

    /// Parses and validates `raw` (key → text; a missing key takes its default) by the rows of ``SettingsTable``,
    /// reporting every bad or unknown key at once. `environment` gives S3 credentials when no setting does.
    package init(raw: [String: String], environment: [String: String] = [:]) throws(ConfigurationError) {
        var read = SettingsReader(raw: raw)
        rawValues = raw
        dataDirectory = read(\.dataDirectory)
        http = HTTP(
            host: read(\.httpHost), port: read(\.httpPort), idleTimeout: read(\.httpIdleTimeout),
            headerTimeout: read(\.httpHeaderTimeout), maxHeaderBytes: Int(read(\.httpMaxHeaderBytes)),
            maxURLBytes: Int(read(\.httpMaxURLBytes)), maxBodyBytes: read(\.httpMaxBodyBytes),
            maxConnections: read(\.httpMaxConnections))
        metrics = Metrics(host: read(\.metricsHost), port: read(\.metricsPort))
        metadata = read(\.metadataURL) ?? .sqlite(path: dataDirectory + "/metadata.sqlite")
        storage = read(\.storageURL) ?? .directory(path: dataDirectory + "/storage")
        analytics = read(\.analyticsURL) ?? .sqlite(path: dataDirectory + "/analytics.sqlite")
        cache = CacheBackend(&read)
        storageCredentials = Self.storageCredentials(&read, environment: environment, storage: storage)
        ingest = Ingest(concurrency: read(\.ingestConcurrency), lease: read(\.ingestLease))
        query = Query(timeout: read(\.queryTimeout), branchTimeout: read(\.queryBranchTimeout))
        let slowCall = read(\.storesBreakerSlowCall)
        storeGuards = StoreGuards(
            breaker: BreakerPolicy(
                window: read(\.storesBreakerWindow), minimumCalls: read(\.storesBreakerMinimumCalls),
                failureRatio: Double(read(\.storesBreakerFailurePercent)) / 100,
                slowCallThreshold: slowCall > .zero ? slowCall : nil, coolDown: read(\.storesBreakerCoolDown),
                probes: read(\.storesBreakerProbes)),
            maxConcurrentCalls: read(\.storesMaxConcurrentCalls),
            retry: RetryPolicy(attempts: read(\.storesRetryAttempts)), callTimeout: read(\.storesCallTimeout))
        uploads = Uploads(
            maxConcurrent: read(\.uploadsMaxConcurrent),
            maxConcurrentPerPrincipal: read(\.uploadsMaxConcurrentPerPrincipal), maxBytes: read(\.uploadsMaxBytes),
            retryAfter: read(\.uploadsRetryAfter), bodyTimeout: read(\.uploadsBodyTimeout),
            minBytesPerSecond: read(\.uploadsMinBytesPerSecond))
        shutdown = Shutdown(drainDelay: read(\.shutdownDrainDelay), gracePeriod: read(\.shutdownGracePeriod))
        readiness = Readiness(interval: read(\.readinessInterval), timeout: read(\.readinessTimeout))
        logLevel = read(\.logLevel)
        routing = Routing(&read)
        tls = TLS(&read)
        cors = CORS(allowedOrigins: read(\.corsAllowedOrigins), maxAge: read(\.corsMaxAge))
        rateLimits = RateLimits(&read)
        auth = Auth(&read, host: http.host)
        _ = read(\.configFile)
        if !read.problems.isEmpty { throw ConfigurationError(problems: read.problems) }
    }

    /// Every setting with its effective value, secrets redacted: what the gateway logs at start.
    package var printableSettings: [(key: String, value: String)] {
        SettingsTable.rows.map { row in (row.key, row.display(rawValues[row.key] ?? row.defaultValue)) }
    }
}

extension GatewayConfiguration.Routing {
    /// Reads the routing keys and validates the file they name: its problems are the `routing.file` key's.
    fileprivate init(_ read: inout SettingsReader) {
        file = read(\.routingFile)
        reloadInterval = read(\.routingReloadInterval)
        maxConnectionsPerInstance = read(\.routingMaxConnectionsPerInstance)
        trustedProxies = []
        for entry in (read(\.routingTrustedProxies) ?? "").split(separator: ",") {
            let text = entry.trimmingCharacters(in: .whitespaces)
            guard let range = AddressRange(text) else {
                read.refuse(
                    \.routingTrustedProxies,
                    expected:
                        "IP addresses or CIDR ranges (10.0.0.0/8, fd00::/8), comma-separated; '\(text)' is neither")
                continue
            }
            trustedProxies.append(range)
        }
        dnsServer = nil
        if let text = read(\.routingDNSServer) {
            if let server = Self.server(text) {
                dnsServer = server
            } else {
                read.refuse(
                    \.routingDNSServer, expected: "an IP address and port, such as 10.96.0.10:53 or [fd00::a]:53")
            }
        }
        table = .empty
        guard let file else { return }
        do {
            table = try RoutingTable.load(path: file)
        } catch {
            read.refuse(\.routingFile, expected: "a valid routing table; " + error.problems.joined(separator: "; "))
        }
    }

    /// `ip:port` or `[ip]:port`, when the address is an IP address a resolver can be made for.
    private static func server(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard (try? DNSResolver(host: host, port: port)) != nil else { return nil }
        return (host, port)
    }
}

import Clients
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOSSL
import ServiceLifecycle
import UnixSignals

extension Gateway {
    /// The HTTP server as a service; `onServerRunning` learns the bound port (useful with port 0).
    package func makeApplication(
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let http = configuration.http
        let connections = connections
        let (router, routes) = try makeRouter()
        let proxy = proxyEnvironment(routes: routes)
        let logger = logger
        let server = HTTPServerBuilder.http1(
            configuration: .init(
                additionalChannelHandlers: [
                    LingeringCloseHandler(), MalformedRequestHandler(),
                    ConnectionGuard(
                        connections: connections, headTimeout: http.headerTimeout,
                        maxChunkBytes: configuration.uploads.maxBytes),
                    // Hummingbird's own copy (after these handlers, idle time-out off) would not see the proxied
                    // requests: this one sees every request, so it neither closes a connection mid-proxy nor
                    // misses one at shutdown.
                    HTTPConnectionStateHandler(idleTimeout: http.idleTimeout, logger: logger),
                    ProxyHandler(environment: proxy),
                ],
                idleTimeout: nil,
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: http.maxHeaderBytes, maxHeaderListSize: http.maxHeaderBytes)))
        return Application(
            router: router,
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

    /// Everything that runs, in start order: the key and certificate timers, the metrics listener, readiness checks,
    /// ingest workers, the HTTP server, the drain step. A graceful shutdown
    /// (one of `signals`, or `triggerGracefulShutdown()`) stops them in reverse: `/readyz` turns 503 and the listener
    /// stays open for `shutdown.drainDelay`; then the listener closes and in-flight requests get
    /// `shutdown.gracePeriod` to finish before they are cancelled.
    package func makeServiceGroup(
        signals: [UnixSignal], onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in },
        onMetricsRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> ServiceGroup {
        var services: [any Service] = []
        if let refresher = access.refresher { services.append(refresher) }
        // Started before and stopped after the API: scrapes still work while it drains.
        services.append(makeMetricsApplication(onServerRunning: onMetricsRunning))
        if let certificates { services.append(certificates.reloader) }
        if configuration.routing.file != nil {
            let dns = configuration.routing.dnsServer ?? DNSResolver.systemServer()
            services.append(
                RoutingService(
                    routing: routing, reloadInterval: configuration.routing.reloadInterval, metrics: metrics,
                    resolver: try DNSResolver(host: dns.host, port: dns.port), logger: logger))
        }
        services += [
            readiness, ingest, try makeApplication(onServerRunning: onServerRunning),
            DrainService(
                readiness: readiness, delay: configuration.shutdown.drainDelay,
                gracePeriod: configuration.shutdown.gracePeriod, logger: logger),
        ]
        var group = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: signals, logger: logger)
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
}

import AsyncHTTPClient
import NIOCore
import NIOSSL
import Synchronization

/// The HTTP client of proxied requests and of upstream health checks: AsyncHTTPClient's pooled keep-alive
/// connections (a pool per instance and TLS configuration) on NIO's shared event loops, where the gateway's own
/// connections also run. Redirects go back to the caller, never followed; only HTTP/1.1 is spoken upstream.
package final class UpstreamClient: Sendable {
    /// One client per connect time-out (AsyncHTTPClient sets it per client, the routing table per upstream).
    private let clients = Mutex<[Duration: HTTPClient]>([:])
    private let maxConnectionsPerInstance: Int

    private init(maxConnectionsPerInstance: Int) { self.maxConnectionsPerInstance = maxConnectionsPerInstance }

    /// Runs `body` with a client and shuts its connections down after it returns or throws.
    package static func with<Result: Sendable>(
        maxConnectionsPerInstance: Int, _ body: (UpstreamClient) async throws -> Result
    ) async throws -> Result {
        let client = UpstreamClient(maxConnectionsPerInstance: maxConnectionsPerInstance)
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Sends `request`; `deadline` bounds the wait for the answer's head (its body then streams as long as it takes).
    package func execute(
        _ request: HTTPClientRequest, connectTimeout: Duration, deadline: NIODeadline
    ) async throws -> HTTPClientResponse {
        try await client(connectTimeout: connectTimeout).execute(request, deadline: deadline)
    }

    /// The TLS configuration for `https://` instances: `caFile` trusted instead of the system's roots, and the
    /// client certificate presented when one is given. Throws when a file does not hold what it should.
    package static func tlsConfiguration(
        caFile: String?, certificateFile: String?, privateKeyFile: String?
    ) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile)) }
        if let certificateFile, let privateKeyFile {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: privateKeyFile, format: .pem))
        }
        return tls
    }

    private func client(connectTimeout: Duration) -> HTTPClient {
        clients.withLock { clients in
            if let client = clients[connectTimeout] { return client }
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(connect: .nanoseconds(Int64(connectTimeout / .nanoseconds(1)))),
                connectionPool: .init(
                    idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerInstance),
                decompression: .disabled)
            configuration.httpVersion = .http1Only
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[connectTimeout] = client
            return client
        }
    }

    private func shutdown() async {
        let all = clients.withLock { clients in
            defer { clients = [:] }
            return Array(clients.values)
        }
        for client in all { try? await client.shutdown() }
    }
}

import AsyncHTTPClient
import Foundation
import KubinModel
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import TestSupport

@testable import Gateway

/// A gateway serving on a real loopback socket, with its data directory, captured logs and an HTTP client.
///
/// Requests carry ``token`` (a development token of tenant `default` with every scope) unless they name their own
/// `Authorization` header, or pass `authorized: false`.
struct LiveGateway: Sendable {
    let port: Int
    let dataDirectory: String
    let gateway: Gateway
    let client: HTTPClient
    let logs: LogCapture
    let token: String
    /// The port of the `/metrics` listener.
    let metricsPort: Int

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Sends a request and collects the whole answer.
    func send(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil,
        authorized: Bool = true
    ) async throws -> (status: Int, headers: HTTPHeaders, body: ByteBuffer) {
        var request = HTTPClientRequest(url: url(path))
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if authorized, !request.headers.contains(name: "Authorization") {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        request.body = body
        let response = try await client.execute(request, timeout: .seconds(60))
        let collected = try await response.body.collect(upTo: 256 << 20)
        return (Int(response.status.code), response.headers, collected)
    }

    /// The answer's body decoded as a JSON object.
    func json(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil,
        authorized: Bool = true
    )
        async throws -> (status: Int, headers: HTTPHeaders, object: [String: Any])
    {
        let answer = try await send(method, path, headers: headers, body: body, authorized: authorized)
        let object = try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: Any]
        return (answer.status, answer.headers, object ?? [:])
    }

    /// The value of one sample of `/metrics`, such as `gateway_uploads_in_flight` or
    /// `gateway_uploads_rejected_total{reason="concurrency"}`; nil when absent.
    func metric(_ sample: String) async throws -> Double? {
        let text = try await metricsText()
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1))
        }
        return nil
    }

    /// The `/metrics` exposition, from the metrics listener.
    func metricsText() async throws -> String {
        let response = try await client.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(metricsPort)/metrics"), timeout: .seconds(30))
        return String(buffer: try await response.body.collect(upTo: 16 << 20))
    }

    /// Polls `condition` until it holds, failing after `timeout`.
    func eventually(
        _ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
    ) async throws {
        try await poll(what, timeout: timeout, condition)
    }

    /// Files under the storage directory (objects and staging), relative to it.
    var storedFiles: [String] { regularFiles(under: dataDirectory + "/storage") }

    /// What the gateway's object store holds: the storage directory's files, or the keys under the S3 store's prefix
    /// (listed with boto3; the tests' S3 stores use the server without signature checks).
    func storedObjects() throws -> [String] {
        guard case .s3(let location) = gateway.configuration.storage else { return storedFiles }
        let output = try python(
            """
            import boto3
            s3 = boto3.client('s3', endpoint_url='\(location.endpoint.absoluteString)', region_name='\(location.region)',
                aws_access_key_id='open', aws_secret_access_key='open')
            for page in s3.get_paginator('list_objects_v2').paginate(Bucket='\(location.bucket)',
                    Prefix='\(location.prefix)/'):
                for item in page.get('Contents', []):
                    print(item['Key'])
            """)
        return String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}

/// Log lines written by the gateway under test, parsed as JSON.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    /// Every line that is a JSON object with `message` equal to `message`.
    func entries(message: String) -> [[String: Any]] {
        lines.withLock { $0 }.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }.filter { $0["message"] as? String == message }
    }

    var all: [String] { lines.withLock { $0 } }
}

/// Runs a gateway on port 0 in a fresh data directory for the duration of `body`, then shuts it down gracefully.
/// `settings` (key → text, as an operator writes them) are read like `kubin-gateway`'s own.
/// Writes the routing file `table` to a fresh path and runs a live gateway routing by it (re-read every 100 ms), with
/// `settings` besides; `body` gets the gateway and the file's path (to rewrite it).
func withRoutingGateway(
    _ table: String, settings: [String: String] = [:], _ body: (LiveGateway, String) async throws -> Void
) async throws {
    let path = NSTemporaryDirectory() + "routing-\(UUID().uuidString).yaml"
    defer { try? FileManager.default.removeItem(atPath: path) }
    try table.write(toFile: path, atomically: true, encoding: .utf8)
    try await withLiveGateway(["routing.file": path, "routing.reloadInterval": "100ms"].merging(settings) { $1 }) {
        try await body($0, path)
    }
}

func withLiveGateway(
    _ settings: [String: String] = [:], now: @escaping @Sendable () -> Date = Date.init,
    _ body: (LiveGateway) async throws -> Void
) async throws {
    let directory = NSTemporaryDirectory() + "kubin-gateway-test-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let configuration = try GatewayConfiguration(
        raw: ["data.dir": directory, "http.port": "0", "metrics.port": "0", "readiness.interval": "50ms"]
            .merging(settings) { $1 })
    let logs = LogCapture()
    let logger = Logger(label: "kubin-gateway") { label in
        JSONLogHandler(label: label, level: .info, sink: { logs.append($0) })
    }
    var clientConfiguration = HTTPClient.Configuration()
    clientConfiguration.connectionPool = .init(
        idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
    clientConfiguration.redirectConfiguration = .disallow
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    do {
        try await Gateway.with(configuration: configuration, logger: logger, now: now) { gateway in
            let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let (metricsPorts, metricsContinuation) = AsyncStream.makeStream(of: Int.self)
            let group = try gateway.makeServiceGroup(
                signals: [],
                onServerRunning: { port in
                    portContinuation.yield(port)
                    portContinuation.finish()
                },
                onMetricsRunning: { port in
                    metricsContinuation.yield(port)
                    metricsContinuation.finish()
                })
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else {
                    throw TestFailure("the gateway stopped before its server ran")
                }
                var metricsIterator = metricsPorts.makeAsyncIterator()
                guard let metricsPort = await metricsIterator.next() else {
                    throw TestFailure("the gateway stopped before its metrics listener ran")
                }
                let token =
                    try await gateway.access.developmentSigner?.token(
                        subject: "live-test", tenant: .legacy, scopes: Set(Scope.allCases), validity: .seconds(3600))
                    ?? ""
                let live = LiveGateway(
                    port: port, dataDirectory: directory, gateway: gateway, client: client, logs: logs, token: token,
                    metricsPort: metricsPort)
                do {
                    try await body(live)
                } catch {
                    await group.triggerGracefulShutdown()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    } catch {
        try? await client.shutdown()
        throw error
    }
    try await client.shutdown()
}

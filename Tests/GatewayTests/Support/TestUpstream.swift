import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TestSupport

/// One instance of an upstream in the proxy tests: a real HTTP server (Hummingbird) on a loopback port.
///
/// `GET /healthz` answers 200 while ``isHealthy``, else 503. Any other request is answered with what arrived, as a
/// JSON object (`instance`, `method`, `target`, `headers`, `bodyBytes`, `bodySHA256`), after the body was read
/// whole. Query parameters change that: `status=N` answers N, `delay=MS` waits before answering (only on the instance `slow=NAME` names, when given), `size=N` answers N
/// bytes of ``pattern(_:)`` instead, `fail=NAME` answers 500 on the instance so named, `unavailable=NAME` 503 (with `retryAfter=S` as its Retry-After)
/// (`pace=MS` between 64 KiB chunks); ``aborted`` counts answers whose connection
/// closed before they were written; `hold=1` waits for ``release()``.
final class TestUpstream: Sendable {
    /// What the server and the test share.
    private final class State: Sendable {
        let isHealthy = Atomic(true)
        let aborted = Atomic(0)
        let received = Atomic(0)
        /// Holds `hold=1` requests until ``TestUpstream/release()``.
        let gate = AsyncStream.makeStream(of: Void.self)
    }

    let name: String
    let host: String
    let port: Int
    private let state: State

    private init(name: String, host: String, port: Int, state: State) {
        self.name = name
        self.host = host
        self.port = port
        self.state = state
    }

    var url: String { "http://\(host):\(port)" }
    var isHealthy: Bool {
        get { state.isHealthy.load(ordering: .relaxed) }
        set { state.isHealthy.store(newValue, ordering: .relaxed) }
    }
    var aborted: Int { state.aborted.load(ordering: .relaxed) }
    /// Lets the `hold=1` request waiting on this instance answer.
    func release() { state.gate.continuation.yield() }

    /// Requests received, health checks aside.
    var received: Int { state.received.load(ordering: .relaxed) }

    /// The bytes of a `size=N` answer: 0, 1, ..., 250, 0, ... (a prime cycle, so misplaced chunks show).
    static func pattern(_ count: Int, from offset: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8((offset + $0) % 251) }
    }

    /// Runs the instances named by `names` (on 127.0.0.1, or `hosts`; on free ports, or `ports`) for the duration
    /// of `body`.
    static func with<Result: Sendable>(
        _ names: [String], hosts: [String]? = nil, ports: [Int]? = nil,
        _ body: ([TestUpstream]) async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var upstreams: [TestUpstream] = []
            for (index, name) in names.enumerated() {
                let (started, continuation) = AsyncStream.makeStream(of: TestUpstream.self)
                let state = State()
                group.addTask {
                    let app = Application(
                        responder: CallbackResponder<BasicRequestContext> { request, _ in
                            try await answer(request, name: name, state: state)
                        },
                        configuration: .init(
                            address: .hostname(hosts?[index] ?? "127.0.0.1", port: ports?[index] ?? 0)),
                        onServerRunning: { channel in
                            continuation.yield(
                                TestUpstream(
                                    name: name, host: hosts?[index] ?? "127.0.0.1",
                                    port: channel.localAddress?.port ?? 0,
                                    state: state))
                            continuation.finish()
                        },
                        logger: Logger(label: "upstream", factory: { _ in SwiftLogNoOpLogHandler() }))
                    try await app.runService()
                }
                var iterator = started.makeAsyncIterator()
                guard let upstream = await iterator.next() else { throw TestFailure("upstream \(name) did not start") }
                upstreams.append(upstream)
            }
            do {
                let result = try await body(upstreams)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    private static func answer(
        _ request: Request, name: String, state: State
    ) async throws -> Response {
        if request.uri.path == "/healthz" {
            return Response(status: state.isHealthy.load(ordering: .relaxed) ? .ok : .serviceUnavailable)
        }
        state.received.add(1, ordering: .relaxed)
        let query = request.uri.queryParameters
        if query["hold"] != nil {
            for await _ in state.gate.stream { break }
        }
        if let delay = query["delay"].flatMap({ Int($0) }), query["slow"].map({ $0 == name }) ?? true {
            try await Task.sleep(for: .milliseconds(delay))
        }
        let isUnavailable = query["unavailable"].map(String.init) == name
        let status = HTTPResponse.Status(
            code: isUnavailable
                ? 503 : query["fail"].map { $0 == name ? 500 : 200 } ?? query["status"].flatMap { Int($0) } ?? 200)
        if let size = query["size"].flatMap({ Int($0) }) {
            let pace = query["pace"].flatMap { Int($0) }
            return Response(
                status: status, headers: [.contentType: "application/octet-stream"],
                body: ResponseBody(contentLength: size) { writer in
                    var sent = 0
                    do {
                        while sent < size {
                            let count = min(64 * 1024, size - sent)
                            try await writer.write(ByteBuffer(bytes: pattern(count, from: sent)))
                            sent += count
                            if let pace { try await Task.sleep(for: .milliseconds(pace)) }
                        }
                        try await writer.finish(nil)
                    } catch {
                        state.aborted.add(1, ordering: .relaxed)
                        throw error
                    }
                })
        }
        var hash = SHA256()
        var count = 0
        for try await chunk in request.body {
            chunk.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
            count += chunk.readableBytes
        }
        let echo: [String: Any] = [
            "instance": name, "method": request.method.rawValue,
            "target": request.uri.path + (request.uri.query.map { "?" + $0 } ?? ""),
            "headers": request.headers.map { [$0.name.canonicalName, $0.value] },
            "bodyBytes": count, "bodySHA256": hash.finalize().map { String(format: "%02x", $0) }.joined(),
        ]
        let data = try JSONSerialization.data(withJSONObject: echo)
        var headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("X-Upstream")!: name]
        if isUnavailable, let seconds = query["retryAfter"] { headers[.retryAfter] = String(seconds) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

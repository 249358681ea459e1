import Hummingbird
import Logging
import Synchronization

/// Measures every request once, from its head to the last byte of its answer, and reports it twice: one JSON access
/// log line (request id, method, path, route, status, duration, bytes in and out) and the request metrics.
///
/// Sits inside ``RequestIDMiddleware`` (so the line carries the id) and outside ``ProblemMiddleware`` (so it sees the
/// status of error answers).
struct TelemetryMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// Where request counts and durations go.
    let metrics: GatewayMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let record = RequestRecord(
            method: request.method.rawValue, path: request.uri.path, logger: context.logger, metrics: metrics)
        metrics.requestStarted()
        var request = request
        request.body = RequestBody(asyncSequence: CountingSequence(base: request.body, record: record))
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Only cancellation (a shutdown past its deadline) or a broken connection gets here: 499 as nginx logs
            // a request whose client is gone, 500 for anything else.
            record.finish(
                status: error is CancellationError ? 499 : 500, route: context.endpointPath ?? "unmatched",
                aborted: true)
            throw error
        }
        let route = context.endpointPath.map { $0 == "NotFound" ? "unmatched" : $0 } ?? "unmatched"
        let status = response.status.code
        record.answered(route: route)
        var counted = response
        let body = response.body
        counted.body = ResponseBody(contentLength: body.contentLength) { writer in
            do {
                try await body.write(CountingWriter(base: writer, record: record))
                record.finish(status: status, route: route, aborted: false)
            } catch {
                record.finish(status: status, route: route, aborted: true)
                throw error
            }
        }
        return counted
    }
}

/// One request's measurements (the proxy's as well as the router's); reported exactly once, by `finish` or, if the
/// answer was never written, on release.
final class RequestRecord: Sendable {
    private struct State {
        var bytesIn = 0
        var bytesOut = 0
        var isFinished = false
        var route = "unmatched"
        var upstream: Upstream?
    }

    /// Where a proxied request went.
    private struct Upstream {
        var name: String
        var instance: String?
        /// From sending the request to the answer's head.
        var latency: Duration?
    }

    private let method: String
    private let path: String
    private let logger: Logger
    private let metrics: GatewayMetrics
    private let started = ContinuousClock.now
    private let requestID: String?
    private let state = Mutex(State())

    /// `requestID`: for the access log line when `logger` does not carry it already.
    init(method: String, path: String, logger: Logger, metrics: GatewayMetrics, requestID: String? = nil) {
        self.requestID = requestID
        self.method = method
        self.path = path
        self.logger = logger
        self.metrics = metrics
    }

    /// The upstream of a proxied request, the instance it went to (nil until one is picked) and its latency.
    func reportUpstream(_ name: String, instance: String?, latency: Duration?) {
        state.withLock { $0.upstream = Upstream(name: name, instance: instance, latency: latency) }
    }

    func addIn(_ count: Int) { state.withLock { $0.bytesIn += count } }
    func answered(route: String) { state.withLock { $0.route = route } }
    func addOut(_ count: Int) { state.withLock { $0.bytesOut += count } }

    func finish(status: Int, route: String, aborted: Bool) {
        let duration = ContinuousClock.now - started
        let counts = state.withLock { state -> (in: Int, out: Int, upstream: Upstream?)? in
            guard !state.isFinished else { return nil }
            state.isFinished = true
            return (state.bytesIn, state.bytesOut, state.upstream)
        }
        guard let counts else { return }
        metrics.requestFinished(method: method, route: route, status: status, duration: duration)
        // The line's metadata costs more than the rest of the record: build it only when it is written.
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "method": .string(method), "path": .string(path), "route": .string(route),
            "status": .stringConvertible(status),
            "duration_ms": .stringConvertible(((duration / .milliseconds(1)) * 1000).rounded() / 1000),
            "bytes_in": .stringConvertible(counts.in), "bytes_out": .stringConvertible(counts.out),
        ]
        if aborted { metadata["aborted"] = .stringConvertible(true) }
        if let requestID { metadata["request_id"] = .string(requestID) }
        if let upstream = counts.upstream {
            metadata["upstream"] = .string(upstream.name)
            if let instance = upstream.instance { metadata["instance"] = .string(instance) }
            if let latency = upstream.latency {
                metadata["upstream_ms"] = .stringConvertible(((latency / .milliseconds(1)) * 1000).rounded() / 1000)
            }
        }
        logger.info("request", metadata: metadata)
    }

    deinit {
        // The connection ended before the answer was written (status 499, as nginx logs it): still one line and
        // one count.
        finish(status: 499, route: state.withLock { $0.route }, aborted: true)
    }
}

/// A request body that tells its record how many bytes passed.
private struct CountingSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: RequestBody
    let record: RequestRecord

    func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), record: record) }

    struct Iterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let record: RequestRecord

        mutating func next() async throws -> ByteBuffer? {
            let chunk = try await base.next()
            if let chunk { record.addIn(chunk.readableBytes) }
            return chunk
        }
    }
}

/// A response writer that tells its record how many bytes passed.
private struct CountingWriter: ResponseBodyWriter {
    var base: any ResponseBodyWriter
    let record: RequestRecord

    mutating func write(_ buffer: ByteBuffer) async throws {
        record.addOut(buffer.readableBytes)
        try await base.write(buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await base.finish(trailingHeaders)
    }
}

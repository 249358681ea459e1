import HTTPTypes
import Hummingbird
import KubinModel
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Orchestrators

/// `/api/v1/snapshots`: upload, list, get, delete, and download the original archive.
struct SnapshotRoutes {
    /// Stores uploads.
    let uploads: UploadOrchestrator
    /// Reads and deletes snapshots.
    let catalog: SnapshotCatalog
    /// Learns of new ingest jobs.
    let ingest: IngestOrchestrator
    /// Counts upload bytes and refusals.
    let metrics: GatewayMetrics
    /// Tells whether the instance is draining (then it takes no new uploads).
    let readiness: ReadinessMonitor

    /// Adds the routes under `/api/v1/snapshots`.
    func register(on router: Router<GatewayRequestContext>) {
        router.group("api/v1/snapshots")
            .post(use: upload)
            .get(use: list)
            .get("{id}", use: snapshot)
            .delete("{id}", use: delete)
            .get("{id}/archive", use: archive)
    }

    /// `POST /api/v1/snapshots`: every check that needs no body runs first; `100 Continue` (when the client asked for
    /// it) goes out only when the orchestrator starts reading, so a refused upload is never sent.
    @Sendable func upload(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let accepted: UploadOrchestrator.Accepted
        do {
            guard !readiness.isDraining else {
                throw KubinError(
                    .shuttingDown, "This instance is shutting down and takes no new uploads; retry.",
                    retryAfterSeconds: 1)
            }
            try RequestParameters.onlyAllowed(request, ["cluster"])
            let tenant = try context.tenant
            let upload = UploadOrchestrator.Request(
                tenant: tenant, principal: "\(tenant)/\(context.principal?.subject ?? "")",
                cluster: try RequestParameters.cluster(request, required: true)!,
                idempotencyKey: try RequestParameters.idempotencyKey(request),
                declaredLength: try RequestParameters.contentLength(request))
            let body = UploadBytes(
                base: request.body, metrics: metrics,
                continueOn: try RequestParameters.expectsContinue(request) ? context.channel : nil)
            accepted = try await uploads.upload(upload, body: body, logger: context.logger)
        } catch let error as KubinError {
            let error = Self.framingError(error, maxBytes: uploads.maxBytes)
            metrics.uploadRejected(Self.rejectionReason(error))
            throw error
        }
        if !accepted.isReplay { ingest.jobCreated() }
        var headers: HTTPFields = [.location: "/api/v1/snapshots/\(accepted.snapshot.id)"]
        if accepted.isReplay { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
        return try JSON.response(SnapshotResource(accepted.snapshot), status: .accepted, headers: headers)
    }

    /// `GET /api/v1/snapshots`.
    @Sendable func list(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try RequestParameters.onlyAllowed(request, ["cluster", "status", "limit", "cursor"])
        let query = SnapshotQuery(
            tenant: try context.tenant, cluster: try RequestParameters.cluster(request, required: false),
            status: try RequestParameters.status(request),
            limit: try RequestParameters.limit(
                request, default: SnapshotQuery.defaultLimit, maximum: SnapshotQuery.maxLimit),
            after: try RequestParameters.cursor(request))
        let page = try await catalog.list(query)
        return try JSON.response(
            PageResource(items: page.items.map(SnapshotResource.init), nextCursor: page.nextCursor))
    }

    /// `GET /api/v1/snapshots/{id}`.
    @Sendable func snapshot(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try RequestParameters.onlyAllowed(request, [])
        let id = try RequestParameters.snapshotID(context)
        return try JSON.response(SnapshotResource(try await catalog.snapshot(id, tenant: try context.tenant)))
    }

    /// `DELETE /api/v1/snapshots/{id}`.
    @Sendable func delete(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try RequestParameters.onlyAllowed(request, [])
        try await catalog.delete(
            try RequestParameters.snapshotID(context), tenant: try context.tenant, subject: context.principal?.subject,
            logger: context.logger)
        return Response(status: .noContent)
    }

    /// The original bytes: `ETag` from the SHA-256, `If-None-Match`, one `Range` (with `If-Range`), streamed.
    @Sendable func archive(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        try RequestParameters.onlyAllowed(request, [])
        let snapshot = try await catalog.archive(
            try RequestParameters.snapshotID(context), tenant: try context.tenant, logger: context.logger)
        let etag = "\"\(snapshot.sha256)\""
        if let noneMatch = request.headers[.ifNoneMatch], ByteRange.noneMatchHits(noneMatch, etag: etag) {
            return Response(status: .notModified, headers: [.eTag: etag])
        }
        let size = snapshot.sizeBytes
        let ifRangeHolds = request.headers[.ifRange].map { $0 == etag } ?? true
        var requested = ifRangeHolds ? ByteRange.parse(request.headers[.range], size: size) : .whole
        var headers: HTTPFields = [
            .eTag: etag, .acceptRanges: "bytes", .contentType: snapshot.format.mediaType,
            .contentDisposition:
                "attachment; filename=\"\(snapshot.cluster)-\(snapshot.id).\(snapshot.format.fileExtension)\"",
        ]
        if size == 0 { requested = .whole }
        let range: Range<Int64>?
        switch requested {
        case .whole: range = nil
        case .range(let bytes):
            range = bytes
            headers[.contentRange] = "bytes \(bytes.lowerBound)-\(bytes.upperBound - 1)/\(size)"
        case .unsatisfiable:
            return Problem.response(
                for: KubinError(.rangeNotSatisfiable, "The archive has \(size) bytes; the Range lies outside it."),
                path: request.uri.path, requestID: context.requestID, extraHeaders: [.contentRange: "bytes */\(size)"])
        }
        let length = range.map { $0.upperBound - $0.lowerBound } ?? size
        let catalog = catalog
        return Response(
            status: range == nil ? .ok : .partialContent, headers: headers,
            body: ResponseBody(contentLength: Int(length)) { writer in
                try await catalog.readArchive(of: snapshot, range: range) { chunk in try await writer.write(chunk) }
                try await writer.finish(nil)
            })
    }

    /// A body that ended because of its chunked framing says why, rather than that it ended early: a chunk declaring
    /// more than any upload may hold (413), a framing that is not HTTP/1.1 (a malformed chunk size, say; 400).
    private static func framingError(_ error: KubinError, maxBytes: Int64) -> KubinError {
        guard error.code == .incompleteBody else { return error }
        switch error.underlying {
        case let chunk as ChunkTooLarge:
            return KubinError(
                .payloadTooLarge,
                "A chunk of the body declares \(chunk.size) bytes or more, past the upload limit of \(maxBytes) bytes.",
                underlying: chunk)
        case let parser as HTTPParserError:
            return KubinError(
                .malformedRequest, "The request body's framing is not valid HTTP/1.1 (\(parser)).", underlying: parser)
        default:
            return error
        }
    }

    private static func rejectionReason(_ error: KubinError) -> GatewayMetrics.RejectionReason {
        switch error.code {
        case .tooManyUploads: error.reason == "principal" ? .principal : .concurrency
        case .requestTimeout: .tooSlow
        case .payloadTooLarge: .tooLarge
        case .unsupportedFormat: .unsupportedFormat
        case .idempotencyKeyReused: .idempotencyConflict
        case .incompleteBody, .malformedRequest: .incomplete
        case .invalidParameter: .invalid
        default: .unavailable
        }
    }
}

/// An upload body that adds each chunk to `gateway_upload_bytes_total` as it arrives, and sends `100 Continue` on
/// `continueOn` when it is first asked for a chunk.
private struct UploadBytes: AsyncSequence {
    typealias Element = ByteBuffer
    typealias Failure = any Error
    let base: RequestBody
    let metrics: GatewayMetrics
    let continueOn: (any Channel)?

    func makeAsyncIterator() -> Iterator {
        Iterator(base: base.makeAsyncIterator(), metrics: metrics, continueOn: continueOn)
    }

    struct Iterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let metrics: GatewayMetrics
        var continueOn: (any Channel)?

        mutating func next() async throws -> ByteBuffer? {
            if let channel = continueOn {
                continueOn = nil
                try await channel.writeAndFlush(HTTPResponsePart.head(HTTPResponse(status: .continue)))
            }
            let chunk = try await base.next()
            if let chunk { metrics.uploadBytesReceived(chunk.readableBytes) }
            return chunk
        }
    }
}

import Clients
import Foundation
import KubinModel
import Logging
import NIOCore

/// Accepts snapshot uploads: admission, format detection, streaming to the object store while hashing and counting,
/// the size limit, idempotent retries, and the metadata row. Nothing is recorded unless every byte is stored.
package final class UploadOrchestrator: Sendable {
    /// Limits of the upload path (the gateway's `uploads.*` settings).
    package struct Configuration: Sendable {
        /// The most uploads in flight on this instance; the next one is refused at once.
        package var maxConcurrent: Int
        /// The most uploads of one principal in flight on this instance.
        package var maxConcurrentPerPrincipal: Int
        /// The largest archive accepted, in bytes.
        package var maxBytes: Int64
        /// What a refused upload is told to wait, in seconds.
        package var retryAfterSeconds: Int
        /// The pace a body must keep: see ``UploadPace``.
        package var bodyTimeout: Duration
        package var minBytesPerSecond: Int64

        package init(
            maxConcurrent: Int, maxConcurrentPerPrincipal: Int, maxBytes: Int64, retryAfterSeconds: Int,
            bodyTimeout: Duration, minBytesPerSecond: Int64
        ) {
            self.maxConcurrent = maxConcurrent
            self.maxConcurrentPerPrincipal = maxConcurrentPerPrincipal
            self.maxBytes = maxBytes
            self.retryAfterSeconds = retryAfterSeconds
            self.bodyTimeout = bodyTimeout
            self.minBytesPerSecond = minBytesPerSecond
        }
    }

    /// An accepted upload.
    package struct Accepted: Sendable {
        /// The snapshot the upload became.
        package var snapshot: Snapshot
        /// True when this answers a retry with a known `Idempotency-Key` instead of storing anything.
        package var isReplay: Bool
    }

    /// What a client sends with an upload.
    package struct Request: Sendable {
        /// The uploader's tenant: the snapshot's owner, and the scope of its idempotency key.
        package var tenant: TenantID
        /// Who uploads, for the slots of one principal.
        package var principal: String
        /// The cluster named in `?cluster=`.
        package var cluster: ClusterName
        /// The `Idempotency-Key` header, already validated.
        package var idempotencyKey: String?
        /// The key as stored: scoped by tenant, so tenants never see each other's keys.
        var scopedIdempotencyKey: String? { idempotencyKey.map { "\(tenant)/\($0)" } }
        /// The `Content-Length` header, when the body is not chunked.
        package var declaredLength: Int64?

        package init(
            tenant: TenantID, principal: String, cluster: ClusterName, idempotencyKey: String?, declaredLength: Int64?
        ) {
            self.tenant = tenant
            self.principal = principal
            self.cluster = cluster
            self.idempotencyKey = idempotencyKey
            self.declaredLength = declaredLength
        }
    }

    private let configuration: Configuration
    private let metadata: any SnapshotStore
    private let objects: any ObjectStore
    private let gate: AdmissionGate
    private let now: @Sendable () -> Date
    private let clock: PaceClock

    /// `now` stamps snapshots (truncated to milliseconds); `clock` times the pace of bodies.
    package init(
        configuration: Configuration, metadata: any SnapshotStore, objects: any ObjectStore,
        now: @escaping @Sendable () -> Date = Date.init, clock: PaceClock = PaceClock(ContinuousClock())
    ) {
        self.configuration = configuration
        self.metadata = metadata
        self.objects = objects
        self.gate = AdmissionGate(
            limit: configuration.maxConcurrent, perPrincipalLimit: configuration.maxConcurrentPerPrincipal)
        self.now = now
        self.clock = clock
    }

    /// Uploads admitted right now.
    package var uploadsInFlight: Int { gate.count }

    /// The longest upload accepted, in bytes.
    package var maxBytes: Int64 { configuration.maxBytes }

    /// Stores one upload, logging with `logger` (the request's, so its lines carry the request id). Throws
    /// ``KubinError``: `tooManyUploads` before reading anything when every slot, or every slot of the principal, is
    /// taken (reason `principal` then), `requestTimeout` when the body does not keep its pace, `payloadTooLarge`,
    /// `unsupportedFormat`, `idempotencyKeyReused`, `incompleteBody`, `dependencyUnavailable`.
    package func upload<Body: AsyncSequence<ByteBuffer, any Error> & Sendable>(
        _ request: Request, body: Body, logger: Logger
    ) async throws -> Accepted {
        if let declared = request.declaredLength, declared > configuration.maxBytes {
            throw tooLarge()
        }
        let admission = try await gate.withSlot(for: request.principal) {
            try await paced(body) { body in try await self.admitted(request, body: body, logger: logger) }
        }
        switch admission {
        case .success(let accepted):
            return accepted
        case .failure(.full):
            throw KubinError(
                .tooManyUploads,
                "This instance is already receiving \(configuration.maxConcurrent) uploads; retry shortly.",
                retryAfterSeconds: configuration.retryAfterSeconds)
        case .failure(.principalFull):
            throw KubinError(
                .tooManyUploads,
                "You already have \(configuration.maxConcurrentPerPrincipal) uploads in flight on this instance; "
                    + "retry when one has finished.", reason: "principal",
                retryAfterSeconds: configuration.retryAfterSeconds)
        }
    }

    /// Runs `work` over `body` while a watch holds the body to its pace; a body that falls behind ends `work` (its
    /// partial object removed as for any failure) and is answered `requestTimeout`.
    private func paced<Body: AsyncSequence<ByteBuffer, any Error> & Sendable>(
        _ body: Body, _ work: @escaping @Sendable (PacedBody<Body>) async throws -> Accepted
    ) async throws -> Accepted {
        let watch = PaceWatch(
            UploadPace(timeout: configuration.bodyTimeout, minBytesPerSecond: configuration.minBytesPerSecond),
            clock: clock)
        do {
            return try await withThrowingTaskGroup(of: Accepted?.self) { group in
                group.addTask {
                    try await watch.watch()
                    return nil
                }
                group.addTask { try await work(PacedBody(base: body, watch: watch)) }
                defer { group.cancelAll() }
                while let result = try await group.next() {
                    if let accepted = result { return accepted }
                }
                throw CancellationError()
            }
        } catch is BodyTooSlow {
            throw KubinError(
                .requestTimeout,
                "The body came too slowly: it must start within \(configuration.bodyTimeout), pause no longer than that, "
                    + "and average at least \(configuration.minBytesPerSecond) bytes per second.")
        }
    }

    private func admitted<Body: AsyncSequence<ByteBuffer, any Error>>(
        _ request: Request, body: Body, logger: Logger
    ) async throws
        -> Accepted
    {
        var iterator = body.makeAsyncIterator()
        var prefix: [ByteBuffer] = []
        var prefixBytes: [UInt8] = []
        var format: SnapshotFormat?
        while format == nil {
            let chunk: ByteBuffer?
            do { chunk = try await iterator.next() } catch { throw incomplete(error) }
            if let chunk {
                prefix.append(chunk)
                prefixBytes += chunk.readableBytesView.prefix(
                    FormatSniffer.maxLeadingWhitespace + 4 - prefixBytes.count)
            }
            switch FormatSniffer.classify(prefixBytes, isComplete: chunk == nil) {
            case .format(let detected): format = detected
            case .needMoreBytes: continue
            case .unsupported:
                throw KubinError(
                    .unsupportedFormat,
                    prefixBytes.isEmpty
                        ? "The body is empty; expected a gzip (.tar.gz), zip or JSON snapshot."
                        : "The body is not a gzip (.tar.gz), zip or JSON snapshot.")
            }
        }
        let metered = MeteredBody<Body>(replay: prefix, rest: iterator, limit: configuration.maxBytes)
        if let key = request.scopedIdempotencyKey,
            let previous = try await dependency("metadata", { try await metadata.idempotencyRecord(forKey: key) })
        {
            // A retry: read and hash the body, store nothing, answer as the first time.
            do { for try await _ in metered {} } catch { throw translate(error) }
            return try await replay(previous, request: request, received: try outcome(of: metered, request))
        }
        return try await store(request, format: format!, body: metered, logger: logger)
    }

    private func store<Base>(
        _ request: Request, format: SnapshotFormat, body: MeteredBody<Base>, logger: Logger
    ) async throws
        -> Accepted
    {
        let created = Date(timeIntervalSince1970: (now().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
        let id = SnapshotID.generate(at: created)
        let key = ObjectKey.archive(of: id)
        do {
            _ = try await objects.put(key, body: body)
        } catch {
            throw translate(error)
        }
        do {
            let received = try outcome(of: body, request)
            let snapshot = Snapshot(
                id: id, cluster: request.cluster, status: .stored, format: format, sizeBytes: received.size,
                sha256: received.sha256, createdAt: created, updatedAt: created, tenant: request.tenant)
            let record = request.scopedIdempotencyKey.map {
                IdempotencyRecord(key: $0, sha256: received.sha256, snapshotID: id)
            }
            guard try await insert(snapshot, idempotencyKey: record) else {
                // Another upload with this key committed first: answer as for a retry.
                await discard(key, logger: logger)
                guard let key = record?.key,
                    let previous = try await dependency(
                        "metadata", { try await metadata.idempotencyRecord(forKey: key) })
                else { throw KubinError(.internalError, "The idempotency key vanished while it was being used.") }
                return try await replay(previous, request: request, received: received)
            }
            logger.info(
                "snapshot stored",
                metadata: [
                    "snapshot_id": "\(id)", "tenant": "\(request.tenant)", "cluster": "\(request.cluster)",
                    "format": "\(format.rawValue)",
                    "size_bytes": .stringConvertible(received.size),
                ])
            return Accepted(snapshot: snapshot, isReplay: false)
        } catch {
            await discard(key, logger: logger)
            throw translate(error)
        }
    }

    /// Records the snapshot; false when another upload took the idempotency key first.
    private func insert(_ snapshot: Snapshot, idempotencyKey record: IdempotencyRecord?) async throws -> Bool {
        do {
            try await metadata.insertSnapshot(snapshot, idempotencyKey: record)
            return true
        } catch let error as MetadataStoreError where error.isIdempotencyKeyConflict {
            return false
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw KubinError.dependencyUnavailable("metadata", underlying: error)
        }
    }

    private func replay(
        _ previous: IdempotencyRecord, request: Request, received: (size: Int64, sha256: String)
    ) async throws -> Accepted {
        let snapshot = try await dependency("metadata") { try await metadata.snapshot(previous.snapshotID) }
        guard let snapshot, snapshot.tenant == request.tenant, snapshot.sha256 == received.sha256,
            snapshot.cluster == request.cluster
        else {
            throw KubinError(
                .idempotencyKeyReused,
                "This Idempotency-Key was already used for a different upload (other bytes or another cluster).")
        }
        return Accepted(snapshot: snapshot, isReplay: true)
    }

    /// The body's size and digest, checked against the declared length.
    private func outcome<Base>(of body: MeteredBody<Base>, _ request: Request) throws -> (size: Int64, sha256: String) {
        guard let received = body.outcome.value else {
            throw KubinError(.internalError, "The upload body was not read to its end.")
        }
        if let declared = request.declaredLength, declared != received.size {
            throw KubinError(
                .incompleteBody, "The body has \(received.size) bytes but Content-Length announced \(declared).")
        }
        return received
    }

    private func discard(_ key: ObjectKey, logger: Logger) async {
        do { try await objects.delete(key) } catch {
            logger.error("could not remove an unrecorded object", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    private func tooLarge() -> KubinError {
        KubinError(.payloadTooLarge, "The upload is larger than the limit of \(configuration.maxBytes) bytes.")
    }

    private func incomplete(_ error: any Error) -> KubinError {
        KubinError(.incompleteBody, "The request body ended before it was complete.", underlying: error)
    }

    /// Errors of the client's stream and of the stores, as the client should see them.
    private func translate(_ error: any Error) -> any Error {
        switch error {
        case let error as KubinError: error
        case let error as ClientStreamError: incomplete(error.underlying)
        case is CancellationError: error
        default: KubinError.dependencyUnavailable("storage", underlying: error)
        }
    }
}

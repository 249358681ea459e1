import AsyncAlgorithms
import Clients
import Foundation
import KubinModel
import Logging
import ServiceLifecycle
import Synchronization

/// Turns stored snapshots into browsable ones: `concurrency` workers claim ingest jobs from metadata with a lease,
/// read each archive with ``SnapshotReader`` into an ``IngestSink``, and mark the snapshot `ready` or `failed`.
///
/// A worker renews its lease and records its progress every 2 seconds (or third of the lease) while it reads; a worker that dies lets
/// its lease expire and another claims the job, which starts over from a cleared index. On graceful shutdown the
/// workers stop reading, give their jobs back (so the next instance starts them at once) and return.
package final class IngestOrchestrator: Service, Sendable {
    /// How the workers run: `concurrency` and `lease` come from the settings table (`ingest.concurrency`,
    /// `ingest.lease`), the rest are fixed tuning.
    package struct Settings: Sendable {
        /// Jobs read at the same time.
        package var concurrency: Int
        /// How long a claim lasts without renewal.
        package var lease: Duration
        /// How often an idle worker looks for jobs (an upload on this instance wakes it sooner).
        package var pollInterval: Duration = .seconds(1)
        /// Log lines gathered into one analytics write.
        package var linesPerWrite = 10_000
        /// Attempts before a job that keeps being interrupted is marked failed.
        package var maxAttempts = 5
        /// The reader's bounds.
        package var limits = SnapshotReader.Limits()

        package init(concurrency: Int, lease: Duration) {
            self.concurrency = concurrency
            self.lease = lease
        }
    }

    private let metadata: any IngestJobQueue & IndexStore & SnapshotStore
    private let objects: any ObjectStore
    private let analytics: any AnalyticsStore
    private let settings: Settings
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let instance = String(UUID().uuidString.lowercased().prefix(8))
    private let doorbell = Doorbell()
    private let stopping = Atomic(false)

    /// Creates the orchestrator; `now` is the clock for leases and status times.
    package init(
        metadata: any IngestJobQueue & IndexStore & SnapshotStore, objects: any ObjectStore,
        analytics: any AnalyticsStore,
        settings: Settings, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.metadata = metadata
        self.objects = objects
        self.analytics = analytics
        self.settings = settings
        self.logger = logger
        self.now = now
    }

    /// Runs the workers until graceful shutdown or cancellation.
    package func run() async throws {
        guard settings.concurrency > 0 else {
            // A service that returns would stop the whole group; this one has nothing to do but wait.
            try? await gracefulShutdown()
            return
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<settings.concurrency {
                    group.addTask(executorPreference: BackgroundExecutor.shared) {
                        await self.work(as: "\(self.instance)-\(index)")
                    }
                }
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
            self.doorbell.ring()
        }
    }

    /// Wakes idle workers: a job was just created.
    package func jobCreated() { doorbell.ring() }

    private func work(as worker: String) async {
        while !Task.isCancelled, !stopping.load(ordering: .relaxed) {
            let didWork: Bool
            do {
                didWork = try await ingestNext(as: worker)
            } catch {
                logger.error("ingest worker failed; retrying", metadata: ["worker": "\(worker)", "error": "\(error)"])
                didWork = false
            }
            if !didWork { await doorbell.wait(atMost: settings.pollInterval) }
        }
    }

    /// Claims and ingests one job as `worker`. Returns false when no job was waiting.
    @discardableResult
    package func ingestNext(as worker: String) async throws -> Bool {
        guard
            let job = try await metadata.claimIngestJob(
                worker: worker, now: now(), leaseUntil: now().addingTimeInterval(settings.lease.seconds))
        else { return false }
        let id = job.snapshot.id
        var logger = logger
        logger[metadataKey: "snapshot_id"] = "\(id)"
        logger[metadataKey: "worker"] = "\(worker)"
        guard job.attempt <= settings.maxAttempts else {
            try await fail(
                job, worker: worker, logger: logger,
                reason: "Indexing was interrupted \(job.attempt - 1) times (an instance stopped or a dependency "
                    + "failed while it read this snapshot), so it was given up.")
            return true
        }
        logger.info("ingest started", metadata: ["attempt": "\(job.attempt)"])
        let started = ContinuousClock.now
        do {
            let counts = try await ingest(job, worker: worker)
            guard try await metadata.completeIngest(id, worker: worker, counts: counts, at: now()) else {
                throw IngestStop.leaseLost
            }
            logger.info(
                "ingest finished",
                metadata: [
                    "seconds": "\((ContinuousClock.now - started).seconds)",
                    "log_lines": "\(counts.logLines)", "events": "\(counts.events)",
                ])
        } catch let error as ArchiveError {
            try await fail(job, worker: worker, logger: logger, reason: error.reason)
        } catch IngestStop.shuttingDown {
            logger.info("ingest stopped for shutdown; the job is given back")
            try await metadata.releaseIngestJob(id, worker: worker)
        } catch IngestStop.leaseLost {
            logger.warning("ingest lost its lease; another worker has the job or the snapshot was deleted")
            if try await metadata.snapshot(id) == nil { try await removeWrites(of: id) }
        } catch {
            // A snapshot deleted mid-ingest makes the next index write fail; what was written elsewhere goes too.
            guard try await metadata.snapshot(id) == nil else { throw error }
            logger.info("snapshot deleted while it was indexed; its partial index is removed")
            try await removeWrites(of: id)
        }
        return true
    }

    /// Reads the archive into the stores; beside the reader, one task writes its log lines and one renews the lease.
    private func ingest(_ job: IngestJob, worker: String) async throws -> SnapshotCounts {
        let id = job.snapshot.id
        try await metadata.clearIndex(id)
        try await removeWrites(of: id)
        let archive = ObjectKey.archive(of: job.snapshot.id)
        let progress = LatestProgress()
        let logs = AsyncChannel<LogWrite>()
        let counts = try await withThrowingTaskGroup(of: SnapshotCounts?.self) { group in
            group.addTask {
                do {
                    var sink = IngestSink(
                        snapshot: id, metadata: self.metadata, objects: self.objects, analytics: self.analytics,
                        logs: logs
                    ) { current in
                        guard !self.stopping.load(ordering: .relaxed) else { throw IngestStop.shuttingDown }
                        progress.value.withLock { $0 = current }
                    }
                    let reader = SnapshotReader(
                        limits: self.settings.limits,
                        referenceMicros: Int64(job.snapshot.createdAt.timeIntervalSince1970 * 1_000_000))
                    try await reader.read(
                        job.snapshot.format,
                        from: StoredObjectBytes(objects: self.objects, key: archive, size: job.snapshot.sizeBytes),
                        into: &sink)
                    logs.finish()
                    return try await sink.finish()
                } catch {
                    logs.finish()
                    throw error
                }
            }
            group.addTask {
                try await LogWriter(
                    snapshot: id, analytics: self.analytics, logs: logs, linesPerWrite: self.settings.linesPerWrite
                ).run()
                return nil
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: min(self.settings.lease / 3, .seconds(2)))
                    let renewed = try await self.metadata.renewIngestLease(
                        id, worker: worker, until: self.now().addingTimeInterval(self.settings.lease.seconds),
                        progress: progress.value.withLock { $0 })
                    guard renewed else { throw IngestStop.leaseLost }
                }
            }
            defer { group.cancelAll() }
            // Done when the reader has counted and the writer has drained (the renewal never ends by itself).
            var counts: SnapshotCounts?
            var isDrained = false
            while counts == nil || !isDrained, let result = try await group.next() {
                if let result { counts = result } else { isDrained = true }
            }
            guard let counts else { throw IngestStop.leaseLost }  // unreachable: the loop ends with counts
            return counts
        }
        try await analytics.flush()
        let renewed = try await metadata.renewIngestLease(
            id, worker: worker, until: now().addingTimeInterval(settings.lease.seconds),
            progress: progress.value.withLock { $0 })
        guard renewed else { throw IngestStop.leaseLost }
        return counts
    }

    private func fail(_ job: IngestJob, worker: String, logger: Logger, reason: String) async throws {
        try await removeWrites(of: job.snapshot.id)
        if try await metadata.failIngest(job.snapshot.id, worker: worker, reason: reason, at: now()) {
            logger.warning("ingest failed", metadata: ["reason": "\(reason)"])
        }
    }

    /// Removes what ingest wrote outside metadata: log lines and events, manifests.
    private func removeWrites(of id: SnapshotID) async throws {
        try await analytics.deleteSnapshot(id)
        try await objects.deleteAll(under: .manifests(of: id))
    }
}

/// The newest progress of one ingest, shared by its reading and its lease-renewing task.
final class LatestProgress: Sendable {
    let value = Mutex(IngestProgress(bytesRead: 0, entriesRead: 0))
}

/// Why a worker stopped reading a job early.
enum IngestStop: Error {
    /// Graceful shutdown began.
    case shuttingDown
    /// The lease expired and another worker took the job, or the snapshot was deleted.
    case leaseLost
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

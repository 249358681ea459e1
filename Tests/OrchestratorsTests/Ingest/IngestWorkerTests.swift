import Clients
import Foundation
import KubinModel
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

@testable import Orchestrators

/// Durable ingest: jobs, leases, a worker that dies mid-ingest, idempotent retries.
@Suite struct IngestWorkerTests {
    struct SimulatedCrash: Error {}

    /// Analytics that dies (throws) on its `crashAt`-th batch of log lines while `armed`.
    final class CrashingAnalytics: ForwardingAnalyticsStore {
        let base: any AnalyticsStore
        let crashAt: Int
        let batches = Atomic(0)
        let armed = Atomic(true)

        init(base: any AnalyticsStore, crashAt: Int) {
            self.base = base
            self.crashAt = crashAt
        }

        func appendLogLines(_ batches: [LogBatch], snapshot: SnapshotID) async throws {
            if armed.load(ordering: .relaxed), self.batches.add(1, ordering: .relaxed).newValue == crashAt {
                throw SimulatedCrash()
            }
            try await base.appendLogLines(batches, snapshot: snapshot)
        }
    }

    /// Holds the ingest at its first batch of lines until the test lets it go.
    final class HeldAnalytics: ForwardingAnalyticsStore {
        let base: any AnalyticsStore
        let reached: Gate
        let release: Gate
        init(base: any AnalyticsStore, reached: Gate, release: Gate) {
            self.base = base
            self.reached = reached
            self.release = release
        }
        func appendLogLines(_ batches: [LogBatch], snapshot: SnapshotID) async throws {
            reached.open()
            await release.wait()
            try await base.appendLogLines(batches, snapshot: snapshot)
        }
    }

    static func upload(
        _ bytes: [UInt8], to stores: Stores, now: @escaping @Sendable () -> Date
    ) async throws -> Snapshot {
        let uploads = UploadOrchestrator(
            configuration: .init(
                maxConcurrent: 1, maxConcurrentPerPrincipal: 1, maxBytes: 1 << 30, retryAfterSeconds: 1,
                bodyTimeout: .seconds(60), minBytesPerSecond: 0),
            metadata: stores.metadata, objects: stores.objects, now: now)
        return try await uploads.upload(
            .init(
                tenant: .legacy, principal: "default/t", cluster: ClusterName(validating: "c")!, idempotencyKey: nil,
                declaredLength: nil),
            body: TestBody(bytes, chunkSize: 64 * 1024), logger: Logger(label: "t")
        ).snapshot
    }

    /// One worker (tests drive it with `ingestNext`) and the default lease.
    static let settings = IngestOrchestrator.Settings(concurrency: 1, lease: .seconds(60))

    /// A worker writing 7 lines at a time whose first analytics write opens `reached` and waits for `release`.
    static func heldWorker(
        _ stores: Stores, _ settings: IngestOrchestrator.Settings = IngestWorkerTests.settings
    ) -> (worker: IngestOrchestrator, reached: Gate, release: Gate) {
        let (reached, release) = (Gate(), Gate())
        var settings = settings
        settings.linesPerWrite = 7
        let worker = IngestOrchestrator(
            metadata: stores.metadata, objects: stores.objects,
            analytics: HeldAnalytics(base: stores.analytics, reached: reached, release: release), settings: settings,
            logger: Logger(label: "t"))
        return (worker, reached, release)
    }

    @Test func aWorkerThatDiesMidIngestIsReplacedAndNothingIsDuplicated() async throws {
        try await Stores.with { stores in
            let clock = ManualClock()
            let dump = try GeneratedDump(form: "directory", archive: "tar.gz", seed: 5)
            let (bytes, summary) = (dump.bytes, dump.summary)
            let snapshot = try await Self.upload(bytes, to: stores, now: { clock.date })
            var settings = IngestWorkerTests.settings
            settings.lease = .seconds(30)
            settings.limits.logBatchSize = 7  // many writes, so the crash lands in the middle
            settings.linesPerWrite = 7
            let crashing = CrashingAnalytics(base: stores.analytics, crashAt: 20)
            let doomed = IngestOrchestrator(
                metadata: stores.metadata, objects: stores.objects, analytics: crashing, settings: settings,
                logger: Logger(label: "t"), now: { clock.date })
            await #expect(throws: SimulatedCrash.self) { try await doomed.ingestNext(as: "doomed") }

            // The dead worker left half an index and its lease.
            #expect(try await stores.metadata.snapshot(snapshot.id)?.status == .processing)
            let partial = try await stores.analytics.logLines(of: snapshot.id, LogQuery(limit: 5000)).items.count
            #expect(partial > 0 && partial < summary["log_lines"]!)
            let rescuer = IngestOrchestrator(
                metadata: stores.metadata, objects: stores.objects, analytics: stores.analytics, settings: settings,
                logger: Logger(label: "t"), now: { clock.date })
            #expect(try await rescuer.ingestNext(as: "rescuer") == false, "the lease still holds")

            clock.advance(by: .seconds(31))
            #expect(try await rescuer.ingestNext(as: "rescuer"))
            let ready = try #require(try await stores.metadata.snapshot(snapshot.id))
            #expect(ready.status == .ready)
            #expect(ready.counts?.logLines == summary["log_lines"])
            #expect(ready.counts?.pods == summary["pods"]! + summary["orphan_pods"]!)
            let lines = try await stores.analytics.logLines(of: snapshot.id, LogQuery(limit: 5000)).items
            #expect(lines.count == summary["log_lines"])
            let keys = Set(
                lines.map { "\($0.stream.namespace)/\($0.stream.pod)/\($0.stream.container)/\($0.line.number)" })
            #expect(keys.count == lines.count, "no line twice")
            let events = try await stores.analytics.events(of: snapshot.id, EventQuery(limit: 1000)).items
            #expect(events.count == 1)
            #expect(
                try await stores.metadata.completeIngest(snapshot.id, worker: "doomed", counts: .init(), at: clock.date)
                    == false)
        }
    }

    @Test func aJobInterruptedTooOftenFailsWithAReason() async throws {
        try await Stores.with { stores in
            let clock = ManualClock()
            let bytes = try GeneratedDump(form: "stdout", archive: "tar.gz", seed: 6).bytes
            let snapshot = try await Self.upload(bytes, to: stores, now: { clock.date })
            var settings = IngestWorkerTests.settings
            settings.maxAttempts = 2
            settings.limits.logBatchSize = 7
            settings.linesPerWrite = 7
            let crashing = CrashingAnalytics(base: stores.analytics, crashAt: 3)
            let worker = IngestOrchestrator(
                metadata: stores.metadata, objects: stores.objects, analytics: crashing, settings: settings,
                logger: Logger(label: "t"), now: { clock.date })
            for _ in 1...2 {
                crashing.batches.store(0, ordering: .relaxed)
                await #expect(throws: SimulatedCrash.self) { try await worker.ingestNext(as: "w") }
                clock.advance(by: .seconds(61))
            }
            #expect(try await worker.ingestNext(as: "w"))
            let failed = try #require(try await stores.metadata.snapshot(snapshot.id))
            #expect(failed.status == .failed)
            #expect(failed.failureReason?.contains("interrupted 2 times") == true)
            #expect(try await stores.analytics.logLines(of: snapshot.id, LogQuery()).items.isEmpty, "no partial index")
            #expect(try await stores.metadata.pods(of: snapshot.id, PodQuery()).items.isEmpty)
            #expect(!stores.storedFiles.contains { $0.contains("manifests") })
        }
    }

    @Test func progressIsVisibleWhileProcessing() async throws {
        try await Stores.with { stores in
            let bytes = try GeneratedDump(form: "directory", archive: "tar.gz", seed: 8).bytes
            let snapshot = try await Self.upload(bytes, to: stores, now: { Date() })
            var settings = IngestWorkerTests.settings
            settings.lease = .milliseconds(300)  // renewed, with progress, every 100 ms
            let (worker, reached, release) = Self.heldWorker(stores, settings)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await worker.ingestNext(as: "w") }
                await reached.wait()
                var seen: Snapshot?
                try await poll("recorded progress", timeout: .seconds(20)) {
                    seen = try await stores.metadata.snapshot(snapshot.id)
                    return (seen?.progress?.entriesRead ?? 0) > 0
                }
                #expect(seen?.status == .processing)
                #expect((seen?.progress?.bytesRead ?? 0) > 0 && (seen?.progress?.entriesRead ?? 0) > 0)
                #expect((seen?.progress?.bytesRead ?? .max) <= snapshot.sizeBytes)
                release.open()
                try await tasks.waitForAll()
            }
            let done = try #require(try await stores.metadata.snapshot(snapshot.id))
            #expect(done.status == .ready && done.progress?.bytesRead == snapshot.sizeBytes)
        }
    }

    @Test func aSnapshotDeletedMidIngestLeavesNothingBehind() async throws {
        try await Stores.with { stores in
            let bytes = try GeneratedDump(form: "directory", archive: "tar.gz", seed: 10).bytes
            let snapshot = try await Self.upload(bytes, to: stores, now: { Date() })
            let (worker, reached, release) = Self.heldWorker(stores)
            try await withThrowingTaskGroup(of: Bool.self) { tasks in
                tasks.addTask { try await worker.ingestNext(as: "w") }
                await reached.wait()
                let deleted = try await stores.metadata.deleteSnapshot(snapshot.id)
                #expect(deleted)
                release.open()
                let didWork = try await tasks.next()
                #expect(didWork == true, "the worker ends the job quietly")
            }
            #expect(try await stores.analytics.logLines(of: snapshot.id, LogQuery()).items.isEmpty)
            #expect(try await stores.analytics.events(of: snapshot.id, EventQuery()).items.isEmpty)
            #expect(!stores.storedFiles.contains { $0.contains("manifests") })
            #expect(try await stores.metadata.pods(of: snapshot.id, PodQuery()).items.isEmpty)
        }
    }

    @Test func gracefulShutdownGivesTheJobBack() async throws {
        try await Stores.with { stores in
            let clock = ManualClock()
            let bytes = try GeneratedDump(form: "directory", archive: "zip", seed: 7).bytes
            let snapshot = try await Self.upload(bytes, to: stores, now: { clock.date })
            let reached = Gate()
            let release = Gate()
            var settings = IngestWorkerTests.settings
            settings.linesPerWrite = 7  // the first write comes while the archive is still being read
            let worker = IngestOrchestrator(
                metadata: stores.metadata, objects: stores.objects,
                analytics: HeldAnalytics(base: stores.analytics, reached: reached, release: release),
                settings: settings,
                logger: Logger(label: "t"), now: { clock.date })
            let group = ServiceGroup(services: [worker], logger: Logger(label: "t"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                await reached.wait()
                await group.triggerGracefulShutdown()
                release.open()
                try await tasks.waitForAll()
            }
            // Given back: claimable at once, without waiting for the lease.
            let job = try await stores.metadata.claimIngestJob(
                worker: "next", now: clock.date, leaseUntil: clock.date + 60)
            #expect(job?.snapshot.id == snapshot.id)
        }
    }
}

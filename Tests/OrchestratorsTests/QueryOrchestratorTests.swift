import Clients
import Foundation
import KubinModel
import Logging
import NIOCore
import Synchronization
import TestSupport
import Testing

@testable import Orchestrators

/// Fan-out, deadlines, partial answers, caching, ETags and coalescing, over real embedded stores holding an
/// ingested dump; wrappers add latency, failures and counters.
@Suite struct QueryOrchestratorTests {
    /// Counts calls, and makes the ones named in `slow` take `delay` on `clock`, the ones in `failing` throw.
    final class Behaviour: Sendable {
        let clock = ManualClock()
        let delay: Duration
        let slow: Set<String>
        let failing: Set<String>
        let calls = Mutex<[String: Int]>([:])
        /// The slow calls whose sleep was cancelled.
        let cancelled = Mutex<Set<String>>([])

        init(delay: Duration = .zero, slow: Set<String> = [], failing: Set<String> = []) {
            self.delay = delay
            self.slow = slow
            self.failing = failing
        }

        struct InjectedFailure: Error {}

        func call(_ name: String) async throws {
            calls.withLock { $0[name, default: 0] += 1 }
            if slow.contains(name) {
                do {
                    try await clock.sleep(for: delay)
                } catch {
                    cancelled.withLock { _ = $0.insert(name) }
                    throw error
                }
            }
            if failing.contains(name) { throw InjectedFailure() }
        }

        func count(_ name: String) -> Int { calls.withLock { $0[name] ?? 0 } }
    }

    final class Metadata: ForwardingSnapshotStore, ForwardingIndexStore {
        let base: any SnapshotStore
        let index: any IndexStore
        let behaviour: Behaviour
        init(_ store: SQLiteMetadataStore, _ behaviour: Behaviour) {
            self.base = store
            self.index = store
            self.behaviour = behaviour
        }
        func snapshot(_ id: SnapshotID) async throws -> Snapshot? {
            try await behaviour.call("metadata.snapshot")
            return try await base.snapshot(id)
        }
        func namespaceSummaries(of id: SnapshotID) async throws -> [NamespaceSummary] {
            try await behaviour.call("metadata.namespaces")
            return try await index.namespaceSummaries(of: id)
        }
        func pods(of id: SnapshotID, _ query: PodQuery) async throws -> Page<IndexedPod> {
            try await behaviour.call("metadata.pods")
            return try await index.pods(of: id, query)
        }
    }

    final class Analytics: ForwardingAnalyticsStore {
        let base: any AnalyticsStore
        let behaviour: Behaviour
        init(_ base: any AnalyticsStore, _ behaviour: Behaviour) {
            self.base = base
            self.behaviour = behaviour
        }
        func namespaceActivity(of snapshot: SnapshotID) async throws -> [String: NamespaceActivity] {
            try await behaviour.call("analytics.activity")
            return try await base.namespaceActivity(of: snapshot)
        }
        func podLogStats(of snapshot: SnapshotID, pods: [PodKey]) async throws -> [PodKey: PodLogStats] {
            try await behaviour.call("analytics.podLogStats")
            return try await base.podLogStats(of: snapshot, pods: pods)
        }
    }

    final class Objects: ForwardingObjectStore {
        let base: any ObjectStore
        let behaviour: Behaviour
        init(_ base: any ObjectStore, _ behaviour: Behaviour) {
            self.base = base
            self.behaviour = behaviour
        }
        func info(_ key: ObjectKey) async throws -> ObjectInfo? {
            try await behaviour.call("storage.info")
            return try await base.info(key)
        }
    }

    /// Real stores with one ingested dump, and a query orchestrator over wrapped stores; the stores `guards` name
    /// (`metadata`, `analytics`) are behind those guards.
    static func withQueries(
        _ behaviour: Behaviour, branchTimeout: Duration = .seconds(5), guards: [String: DependencyGuard] = [:],
        _ body: (QueryOrchestrator<ManualClock>, SnapshotID, Stores) async throws -> Void
    ) async throws {
        try await Stores.with { stores in
            let bytes = try GeneratedDump(form: "directory", archive: "tar.gz", seed: 9).bytes
            let snapshot = try await IngestWorkerTests.upload(bytes, to: stores, now: { Date() })
            let ingest = IngestOrchestrator(
                metadata: stores.metadata, objects: stores.objects, analytics: stores.analytics,
                settings: IngestWorkerTests.settings, logger: Logger(label: "t"))
            #expect(try await ingest.ingestNext(as: "w"))
            let analytics = Analytics(stores.analytics, behaviour)
            let queries = QueryOrchestrator(
                metadata: guards["metadata"].map { GuardedMetadataStore(stores.metadata, guard: $0) }
                    ?? Metadata(stores.metadata, behaviour),
                objects: Objects(stores.objects, behaviour),
                analytics: guards["analytics"].map { GuardedAnalyticsStore(analytics, guard: $0) } ?? analytics,
                timeout: .seconds(10), branchTimeout: branchTimeout, clock: behaviour.clock)
            try await body(queries, snapshot.id, stores)
        }
    }

    @Test(.timeLimit(.minutes(1))) func theOverviewsBranchesRunConcurrently() async throws {
        let slow: Set = ["metadata.namespaces", "analytics.activity", "storage.info"]
        let behaviour = Behaviour(delay: .seconds(1), slow: slow)
        try await Self.withQueries(behaviour) { queries, id, _ in
            async let answer = queries.overview(of: id, tenant: .legacy)
            // One after another, only one of them could ever be asleep; together, all three are, before time moves.
            try await behaviour.clock.waitForSleepers(3, wakingWithin: .seconds(1))
            behaviour.clock.advance(by: .seconds(1))
            let overview = try await answer
            #expect(overview.missing.isEmpty)
            #expect(overview.archive != nil && overview.logVolume != nil && overview.newestWarnings?.count == 1)
            #expect(behaviour.count("metadata.namespaces") == 1 && behaviour.count("storage.info") == 1)
            await #expect {
                _ = try await queries.overview(of: SnapshotID.generate(at: Date()), tenant: .legacy)
            } throws: {
                ($0 as? KubinError)?.code == .notFound
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func aFailedOrSlowOptionalBranchMakesAPartialAnswer() async throws {
        let behaviour = Behaviour(delay: .seconds(30), slow: ["storage.info"], failing: ["analytics.activity"])
        try await Self.withQueries(behaviour, branchTimeout: .seconds(2)) { queries, id, _ in
            async let answer = queries.overview(of: id, tenant: .legacy)
            // Left asleep: the storage call's 30 s stall and its branch's 2 s deadline; every other branch is done.
            try await behaviour.clock.waitForSleepers(2)
            behaviour.clock.advance(by: .seconds(2))
            let overview = try await answer
            #expect(overview.missing.map(\.section) == ["activity", "archive"])
            #expect(overview.missing[0].reason == "the analytics store failed")
            #expect(overview.missing[1].reason == "the storage store did not answer in time")
            #expect(overview.logVolume == nil && overview.archive == nil)
            #expect(!overview.namespaces.isEmpty, "the required sections are there")
        }
    }

    /// The clock never moves: the answer can only come because the slow optional branch is cancelled.
    @Test(.timeLimit(.minutes(1))) func aFailedRequiredBranchIsA503WhateverTheOthersDo() async throws {
        let behaviour = Behaviour(delay: .seconds(30), slow: ["storage.info"], failing: ["metadata.namespaces"])
        try await Self.withQueries(behaviour) { queries, id, _ in
            await #expect { _ = try await queries.overview(of: id, tenant: .legacy) } throws: {
                ($0 as? KubinError)?.code == .dependencyUnavailable
            }
            #expect(behaviour.cancelled.withLock { $0 } == ["storage.info"] || behaviour.count("storage.info") == 0)
        }
    }

    /// A guard whose breaker failures have opened (cool-down 60 s, on a clock that does not move).
    private static func openGuard(_ name: String) async -> DependencyGuard {
        let now = ContinuousClock.now
        let guarded = DependencyGuard(
            name: name, policy: BreakerPolicy(minimumCalls: 2, coolDown: .seconds(60)), maxConcurrentCalls: 8,
            now: { now })
        for _ in 0..<2 { _ = try? await guarded.run { throw Behaviour.InjectedFailure() } }
        return guarded
    }

    /// The clock never moves and the analytics call would stall for 30 s of it: the answer can only come because the
    /// open breaker refuses the call before it is made.
    @Test(.timeLimit(.minutes(1))) func anOpenBreakerMakesAnOptionalPartMissingAtOnce() async throws {
        let behaviour = Behaviour(delay: .seconds(30), slow: ["analytics.activity"])
        let analytics = await Self.openGuard("analytics")
        try await Self.withQueries(behaviour, guards: ["analytics": analytics]) { queries, id, _ in
            let overview = try await queries.overview(of: id, tenant: .legacy)
            #expect(overview.missing.map(\.section) == ["activity"])
            #expect(overview.missing.first?.reason == "the analytics store failed")
            #expect(behaviour.count("analytics.activity") == 0)
            #expect(!overview.namespaces.isEmpty)
        }
    }

    @Test(.timeLimit(.minutes(1))) func anOpenBreakerOfARequiredStoreIsA503WithTheCoolDownLeft() async throws {
        let behaviour = Behaviour()
        let metadata = await Self.openGuard("metadata")
        try await Self.withQueries(behaviour, guards: ["metadata": metadata]) { queries, id, _ in
            await #expect { _ = try await queries.overview(of: id, tenant: .legacy) } throws: {
                let error = $0 as? KubinError
                // The cool-down left, not the fan-out's default of 1.
                return error?.code == .dependencyUnavailable && error?.retryAfterSeconds == 60
                    && error?.detail.contains("metadata") == true
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func concurrentIdenticalMissesReachTheStoreOnceAndETagsNeedNoStore() async throws {
        let behaviour = Behaviour(delay: .milliseconds(100), slow: ["metadata.pods"])
        try await Self.withQueries(behaviour) { queries, id, _ in
            let answers = AnswerCache(cache: InProcessCache(capacityBytes: 1 << 20), logger: Logger(label: "t"))
            let compute: @Sendable () async throws -> AnswerCache.Computed = {
                let view = try await queries.pods(of: id, tenant: .legacy, PodQuery())
                return .init(body: ByteBuffer(string: "\(view.page.items.count)"), isCacheable: true)
            }
            let etags = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        guard
                            case .answer(let answer) = try await answers.answer(
                                snapshot: id, tenant: .legacy, key: "pods", ifNoneMatch: [], compute: compute)
                        else { return "" }
                        return answer.etag
                    }
                }
                // The first miss holds the store; whoever arrives before or after it is released shares its answer.
                try await behaviour.clock.waitForSleepers(1, wakingWithin: .milliseconds(100))
                behaviour.clock.advance(by: .milliseconds(100))
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(behaviour.count("metadata.pods") == 1, "50 identical misses, one store query")
            #expect(etags.count == 1)
            let etag = try #require(etags.first)
            let revalidated = try await answers.answer(
                snapshot: id, tenant: .legacy, key: "pods", ifNoneMatch: ["W/\(etag)"], compute: compute)
            guard case .notModified(let same) = revalidated else {
                Issue.record("expected 304")
                return
            }
            #expect(same == etag)
            #expect(
                behaviour.count("metadata.pods") == 1 && behaviour.count("metadata.snapshot") == 1, "no store touched")

            await answers.invalidate(id)
            async let again = answers.answer(
                snapshot: id, tenant: .legacy, key: "pods", ifNoneMatch: [etag], compute: compute)
            try await behaviour.clock.waitForSleepers(1, wakingWithin: .milliseconds(100))
            behaviour.clock.advance(by: .milliseconds(100))
            _ = try await again
            #expect(behaviour.count("metadata.pods") == 2, "dropped on invalidation")
        }
    }

    @Test func partialAnswersAreNotCached() async throws {
        let answers = AnswerCache(cache: InProcessCache(capacityBytes: 1 << 20), logger: Logger(label: "t"))
        let computed = Atomic(0)
        let id = SnapshotID.generate(at: Date())
        for _ in 0..<3 {
            _ = try await answers.answer(snapshot: id, tenant: .legacy, key: "overview", ifNoneMatch: []) {
                computed.add(1, ordering: .relaxed)
                return .init(body: ByteBuffer(string: "partial"), isCacheable: false)
            }
        }
        #expect(computed.load(ordering: .relaxed) == 3)
    }
}

import Clients
import Foundation
import KubinModel
import NIOCore

/// Answers the web UI's questions about one `ready` snapshot by fanning out to metadata, analytics and storage.
///
/// Every view also checks the snapshot itself (it exists, is the caller's tenant's and is `ready`) as a required branch
/// beside its other branches, so the check costs no extra round trip. Deadlines are on `clock`.
package final class QueryOrchestrator<C: Clock>: Sendable where C.Duration == Duration {
    private let metadata: any SnapshotStore & IndexStore
    private let objects: any ObjectStore
    private let analytics: any AnalyticsStore
    private let clock: C
    private let timeout: Duration
    private let branchTimeout: Duration

    /// Every answer ends within `timeout`, and every store query in it within `branchTimeout`.
    package init(
        metadata: any SnapshotStore & IndexStore, objects: any ObjectStore, analytics: any AnalyticsStore,
        timeout: Duration,
        branchTimeout: Duration, clock: C
    ) {
        self.metadata = metadata
        self.objects = objects
        self.analytics = analytics
        self.timeout = timeout
        self.branchTimeout = branchTimeout
        self.clock = clock
    }

    // MARK: Views

    /// Namespaces by name, with counts from metadata and activity from analytics (optional).
    package func namespaces(
        of id: SnapshotID, tenant: TenantID, limit: Int, after: IndexCursor?
    ) async throws -> PartialPage<NamespaceView> {
        let (_, all, activity) = try await fanOut(
            until: deadline(),
            readyCheck(id, tenant: tenant),
            FanOut.required("namespaces", from: .metadata) { try await self.metadata.namespaceSummaries(of: id) },
            FanOut.optional("activity", from: .analytics) { try await self.analytics.namespaceActivity(of: id) })
        let start = after.map { cursor in all.firstIndex { $0.name > cursor.fields[0] } ?? all.endIndex } ?? 0
        let slice = all[start...].prefix(limit)
        let views = slice.map { summary in
            NamespaceView(summary: summary, activity: activity.value.map { $0[summary.name] ?? .init() })
        }
        let next = start + slice.count < all.count ? slice.last.map { IndexCursor([$0.name]).token } : nil
        return PartialPage(page: Page(items: views, nextCursor: next), missing: [activity.missing].compactMap { $0 })
    }

    /// A page of resources.
    package func resources(
        of id: SnapshotID, tenant: TenantID, _ query: ResourceQuery
    ) async throws -> Page<IndexedResource> {
        try await checked(id, tenant, "resources", from: .metadata) { try await self.metadata.resources(of: id, query) }
    }

    /// One resource's manifest, as stored: one ranged read.
    package func manifest(
        of id: SnapshotID, tenant: TenantID, kind: String, namespace: String?, name: String
    ) async throws -> ByteBuffer {
        let deadline = deadline()
        let (_, found) = try await fanOut(
            until: deadline,
            readyCheck(id, tenant: tenant),
            FanOut.required("resource", from: .metadata) {
                try await self.metadata.resource(of: id, kind: kind, namespace: namespace, name: name)
            })
        guard let location = found?.location, let key = ObjectKey(validating: location.objectKey) else {
            let path = [kind, namespace ?? "-", name].joined(separator: "/")
            throw KubinError(.notFound, "Snapshot '\(id)' has no resource \(path).")
        }
        return try await fanOut(
            until: deadline,
            FanOut.required("manifest", from: .storage) {
                var bytes = ByteBuffer()
                try await self.objects.read(key, range: location.offset..<(location.offset + location.length)) {
                    chunk in
                    var chunk = chunk
                    bytes.writeBuffer(&chunk)
                }
                return bytes
            })
    }

    /// A page of pods with their log statistics (optional, from analytics once the page is known).
    package func pods(of id: SnapshotID, tenant: TenantID, _ query: PodQuery) async throws -> PartialPage<PodView> {
        let deadline = deadline()
        let (_, page) = try await fanOut(
            until: deadline,
            readyCheck(id, tenant: tenant),
            FanOut.required("pods", from: .metadata) { try await self.metadata.pods(of: id, query) })
        let keys = page.items.map { PodKey(namespace: $0.record.namespace, name: $0.record.name) }
        let stats = try await fanOut(
            until: deadline,
            FanOut.optional("logs", from: .analytics) { try await self.analytics.podLogStats(of: id, pods: keys) })
        let views = zip(page.items, keys).map { pod, key in
            PodView(pod: pod, logs: stats.value.map { $0[key] ?? PodLogStats() })
        }
        return PartialPage(
            page: Page(items: views, nextCursor: page.nextCursor), missing: [stats.missing].compactMap { $0 })
    }

    /// A page of log lines.
    package func logs(of id: SnapshotID, tenant: TenantID, _ query: LogQuery) async throws -> Page<LogEntry> {
        try await checked(id, tenant, "logs", from: .analytics) { try await self.analytics.logLines(of: id, query) }
    }

    /// A page of events, newest first.
    package func events(of id: SnapshotID, tenant: TenantID, _ query: EventQuery) async throws -> Page<EventRecord> {
        try await checked(id, tenant, "events", from: .analytics) { try await self.analytics.events(of: id, query) }
    }

    /// The landing page: metadata (required), analytics and storage (optional), all at once.
    package func overview(of id: SnapshotID, tenant: TenantID) async throws -> OverviewView {
        let (snapshot, summaries, mostRestarts, activity, archive) = try await fanOut(
            until: deadline(),
            readyCheck(id, tenant: tenant),
            FanOut.required("namespaces", from: .metadata) { try await self.metadata.namespaceSummaries(of: id) },
            FanOut.required("mostRestarts", from: .metadata) {
                try await self.metadata.podsWithMostRestarts(of: id, limit: OverviewView.topRestarts)
            },
            FanOut.optional("activity", from: .analytics) {
                async let activity = self.analytics.namespaceActivity(of: id)
                async let warnings = self.analytics.events(
                    of: id, EventQuery(type: "Warning", limit: OverviewView.newestWarnings))
                return try await (byNamespace: activity, warnings: warnings.items)
            },
            FanOut.optional("archive", from: .storage) {
                try await self.objects.info(.archive(of: id))
            })
        var phases: [String: Int] = [:]
        for summary in summaries { phases.merge(summary.podsByPhase, uniquingKeysWith: +) }
        return OverviewView(
            snapshot: snapshot,
            namespaces: summaries.map { summary in
                NamespaceView(
                    summary: summary, activity: activity.value.map { $0.byNamespace[summary.name] ?? .init() })
            },
            podPhases: phases, mostRestarts: mostRestarts, newestWarnings: activity.value?.warnings,
            logVolume: activity.value?.byNamespace.mapValues(\.logLines), archive: archive.value ?? nil,
            missing: [activity.missing, archive.missing].compactMap { $0 })
    }

    // MARK: Branches

    private func deadline() -> C.Instant { clock.now.advanced(by: timeout) }

    private func fanOut<each Output: Sendable>(
        until deadline: C.Instant, _ branches: repeat FanOut.Branch<each Output>
    ) async throws -> (repeat each Output) {
        try await FanOut.run(on: clock, until: deadline, branchTimeout: branchTimeout, repeat each branches)
    }

    /// One required branch beside the ready check.
    private func checked<Value: Sendable>(
        _ id: SnapshotID, _ tenant: TenantID, _ section: String, from dependency: FanOut.Dependency,
        _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await fanOut(
            until: deadline(), readyCheck(id, tenant: tenant), FanOut.required(section, from: dependency, operation)
        ).1
    }

    /// The required branch every view has: the snapshot exists, is `tenant`'s (another tenant's is not found, like
    /// an unknown id), and is `ready`.
    private func readyCheck(_ id: SnapshotID, tenant: TenantID) -> FanOut.Branch<Snapshot> {
        FanOut.required("snapshot", from: .metadata) {
            guard let snapshot = try await self.metadata.snapshot(id), snapshot.tenant == tenant else {
                throw KubinError.snapshotNotFound(id.rawValue)
            }
            guard snapshot.status == .ready else {
                let why = snapshot.status == .failed ? "its indexing failed" : "it is still being indexed"
                throw KubinError(
                    .snapshotNotReady, "Snapshot '\(id)' is \(snapshot.status.rawValue): \(why).",
                    retryAfterSeconds: snapshot.status == .failed ? nil : 2)
            }
            return snapshot
        }
    }
}

extension QueryOrchestrator where C == ContinuousClock {
    /// An orchestrator on the continuous clock.
    package convenience init(
        metadata: any SnapshotStore & IndexStore, objects: any ObjectStore, analytics: any AnalyticsStore,
        timeout: Duration,
        branchTimeout: Duration
    ) {
        self.init(
            metadata: metadata, objects: objects, analytics: analytics, timeout: timeout, branchTimeout: branchTimeout,
            clock: ContinuousClock())
    }
}

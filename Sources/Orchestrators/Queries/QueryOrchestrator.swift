import Clients
import Foundation
import KubinModel
import NIOCore

/// Answers the web UI's questions about one `ready` snapshot by fanning out to metadata, analytics and storage.
///
/// Every view also checks the snapshot itself (it exists and is `ready`) as a required branch beside its other
/// branches, so the check costs no extra round trip.
package final class QueryOrchestrator: Sendable {
    /// Views' sizes.
    package enum Limits {
        /// Pods with most restarts on the overview.
        package static let topRestarts = 10
        /// Newest Warning events on the overview.
        package static let newestWarnings = 20
    }

    private let metadata: any MetadataStore
    private let objects: any ObjectStore
    private let analytics: any AnalyticsStore
    private let fanOut: FanOut

    /// Creates the orchestrator; every branch gets at most `branchTimeout`.
    package init(
        metadata: any MetadataStore, objects: any ObjectStore, analytics: any AnalyticsStore,
        branchTimeout: Duration = .seconds(5)
    ) {
        self.metadata = metadata
        self.objects = objects
        self.analytics = analytics
        self.fanOut = FanOut(branchTimeout: branchTimeout)
    }

    /// A namespace with what metadata and analytics know of it.
    package struct NamespaceView: Sendable {
        /// Pods by phase and resources by kind.
        package var summary: NamespaceSummary
        /// Log lines and Warning events; nil when analytics is missing.
        package var activity: NamespaceActivity?
    }

    /// A page of namespaces.
    package struct NamespacesView: Sendable {
        /// The page.
        package var page: Page<NamespaceView>
        /// Sections left out.
        package var missing: [FanOut.Missing]
    }

    /// A pod with its log statistics.
    package struct PodView: Sendable {
        /// The pod.
        package var pod: IndexedPod
        /// Its log statistics: zero when it has no logs, nil when analytics is missing.
        package var logs: PodLogStats?
    }

    /// A page of pods.
    package struct PodsView: Sendable {
        /// The page.
        package var page: Page<PodView>
        /// Sections left out.
        package var missing: [FanOut.Missing]
    }

    /// The landing page.
    package struct OverviewView: Sendable {
        /// The snapshot.
        package var snapshot: Snapshot
        /// Every namespace with its counts.
        package var namespaces: [NamespaceView]
        /// Pods by phase over the snapshot.
        package var podPhases: [String: Int]
        /// The pods with most restarts.
        package var mostRestarts: [IndexedPod]
        /// The newest Warning events; nil when analytics is missing.
        package var newestWarnings: [EventRecord]?
        /// Log lines per namespace; nil when analytics is missing.
        package var logVolume: [String: Int]?
        /// The stored archive; nil when storage is missing.
        package var archive: ObjectInfo?
        /// Sections left out.
        package var missing: [FanOut.Missing]
    }

    // MARK: Views

    /// Namespaces by name, with counts from metadata and activity from analytics (optional).
    package func namespaces(
        of id: SnapshotID, tenant: TenantID, limit: Int, after: IndexCursor?, deadline: ContinuousClock.Instant
    ) async throws -> NamespacesView {
        let results = try await fanOut.run(
            [
                readyCheck(id, tenant: tenant),
                .init("namespaces", from: "metadata", required: true) {
                    try await self.metadata.namespaceSummaries(of: id)
                },
                .init("activity", from: "analytics", required: false) {
                    try await self.analytics.namespaceActivity(of: id)
                },
            ], deadline: deadline)
        let all = results.value("namespaces", as: [NamespaceSummary].self) ?? []
        let activity = results.value("activity", as: [String: NamespaceActivity].self)
        let start = after.map { cursor in all.firstIndex { $0.name > cursor.fields[0] } ?? all.endIndex } ?? 0
        let slice = all[start...].prefix(limit)
        let views = slice.map { summary in
            NamespaceView(summary: summary, activity: activity.map { $0[summary.name] ?? .init() })
        }
        let next = start + slice.count < all.count ? slice.last.map { IndexCursor([$0.name]).token } : nil
        return NamespacesView(page: Page(items: views, nextCursor: next), missing: results.missing)
    }

    /// A page of resources.
    package func resources(
        of id: SnapshotID, tenant: TenantID, _ query: ResourceQuery, deadline: ContinuousClock.Instant
    ) async throws -> Page<IndexedResource> {
        let results = try await fanOut.run(
            [
                readyCheck(id, tenant: tenant),
                .init("resources", from: "metadata", required: true) {
                    try await self.metadata.resources(of: id, query)
                },
            ], deadline: deadline)
        return results.value("resources")!
    }

    /// One resource's manifest, as stored: one ranged read.
    package func manifest(
        of id: SnapshotID, tenant: TenantID, kind: String, namespace: String?, name: String,
        deadline: ContinuousClock.Instant
    ) async throws -> ByteBuffer {
        let results = try await fanOut.run(
            [
                readyCheck(id, tenant: tenant),
                .init("resource", from: "metadata", required: true) {
                    try await self.metadata.resource(of: id, kind: kind, namespace: namespace, name: name)
                        as IndexedResource?
                },
            ], deadline: deadline)
        guard let resource = results.value("resource", as: IndexedResource?.self) ?? nil else {
            let path = [kind, namespace ?? "-", name].joined(separator: "/")
            throw KubinError(.notFound, "Snapshot '\(id)' has no resource \(path).")
        }
        let location = resource.location
        let manifest = try await fanOut.run(
            [
                .init("manifest", from: "storage", required: true) {
                    var bytes = ByteBuffer()
                    try await self.objects.read(
                        ObjectKey(validating: location.objectKey)!,
                        range: location.offset..<(location.offset + location.length)
                    ) { chunk in
                        var chunk = chunk
                        bytes.writeBuffer(&chunk)
                    }
                    return bytes
                }
            ], deadline: deadline)
        return manifest.value("manifest")!
    }

    /// A page of pods with their log statistics (optional, from analytics once the page is known).
    package func pods(
        of id: SnapshotID, tenant: TenantID, _ query: PodQuery, deadline: ContinuousClock.Instant
    ) async throws -> PodsView {
        let results = try await fanOut.run(
            [
                readyCheck(id, tenant: tenant),
                .init("pods", from: "metadata", required: true) { try await self.metadata.pods(of: id, query) },
            ], deadline: deadline)
        let page: Page<IndexedPod> = results.value("pods")!
        let keys = page.items.map { PodKey(namespace: $0.record.namespace, name: $0.record.name) }
        let stats = try await fanOut.run(
            [
                .init("logs", from: "analytics", required: false) {
                    try await self.analytics.podLogStats(of: id, pods: keys)
                }
            ], deadline: deadline)
        let byPod = stats.value("logs", as: [PodKey: PodLogStats].self)
        let views = zip(page.items, keys).map { pod, key in
            PodView(pod: pod, logs: byPod.map { $0[key] ?? PodLogStats() })
        }
        return PodsView(page: Page(items: views, nextCursor: page.nextCursor), missing: stats.missing)
    }

    /// A page of log lines.
    package func logs(
        of id: SnapshotID, tenant: TenantID, _ query: LogQuery, deadline: ContinuousClock.Instant
    ) async throws -> Page<LogEntry> {
        let results = try await fanOut.run(
            [
                readyCheck(id, tenant: tenant),
                .init("logs", from: "analytics", required: true) { try await self.analytics.logLines(of: id, query) },
            ], deadline: deadline)
        return results.value("logs")!
    }

    /// A page of events, newest first.
    package func events(
        of id: SnapshotID, tenant: TenantID, _ query: EventQuery, deadline: ContinuousClock.Instant
    ) async throws -> Page<EventRecord> {
        let results = try await fanOut.run(
            [
                readyCheck(id, tenant: tenant),
                .init("events", from: "analytics", required: true) { try await self.analytics.events(of: id, query) },
            ], deadline: deadline)
        return results.value("events")!
    }

    /// The landing page: metadata (required), analytics and storage (optional), all at once.
    package func overview(
        of id: SnapshotID, tenant: TenantID, deadline: ContinuousClock.Instant
    ) async throws -> OverviewView {
        let results = try await fanOut.run(
            [
                readyCheck(id, tenant: tenant),
                .init("namespaces", from: "metadata", required: true) {
                    try await self.metadata.namespaceSummaries(of: id)
                },
                .init("mostRestarts", from: "metadata", required: true) {
                    try await self.metadata.podsWithMostRestarts(of: id, limit: Limits.topRestarts)
                },
                .init("activity", from: "analytics", required: false) {
                    async let activity = self.analytics.namespaceActivity(of: id)
                    async let warnings = self.analytics.events(
                        of: id, EventQuery(type: "Warning", limit: Limits.newestWarnings))
                    return try await (activity, warnings.items)
                },
                .init("archive", from: "storage", required: false) {
                    try await self.objects.info(ObjectKey(validating: Snapshot.archiveKey(for: id))!) as ObjectInfo?
                },
            ], deadline: deadline)
        let summaries: [NamespaceSummary] = results.value("namespaces")!
        let analytics = results.value("activity", as: ([String: NamespaceActivity], [EventRecord]).self)
        var phases: [String: Int] = [:]
        for summary in summaries { phases.merge(summary.podsByPhase, uniquingKeysWith: +) }
        return OverviewView(
            snapshot: results.value("snapshot")!,
            namespaces: summaries.map { summary in
                NamespaceView(summary: summary, activity: analytics.map { $0.0[summary.name] ?? .init() })
            },
            podPhases: phases, mostRestarts: results.value("mostRestarts")!, newestWarnings: analytics?.1,
            logVolume: analytics?.0.mapValues(\.logLines),
            archive: results.value("archive", as: ObjectInfo?.self) ?? nil, missing: results.missing)
    }

    /// The required branch every view has: the snapshot exists, is `tenant`'s (another tenant's is not found, like
    /// an unknown id), and is `ready`.
    private func readyCheck(_ id: SnapshotID, tenant: TenantID) -> FanOut.Branch {
        .init("snapshot", from: "metadata", required: true) {
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

import Foundation
import KubinModel
import Testing

@testable import Clients

/// Ingest jobs and the snapshot index, on every ``MetadataStore``.
@Suite struct MetadataIndexBehaviourTests {
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    static func resource(
        _ kind: String, _ namespace: String?, _ name: String, labels: [String: String] = [:]
    )
        -> IndexedResource
    {
        IndexedResource(
            record: ResourceRecord(
                kind: kind, apiVersion: "v1", namespace: namespace, name: name, uid: "uid-\(name)", labels: labels,
                createdAtMicros: 5, owners: [OwnerReference(kind: "ReplicaSet", name: "rs", isController: true)]),
            location: ManifestLocation(objectKey: "snapshots/x/manifests/1", offset: Int64(name.count), length: 10))
    }

    static func pod(
        _ namespace: String, _ name: String, phase: String, restarts: Int, labels: [String: String]
    )
        -> IndexedPod
    {
        IndexedPod(
            record: PodRecord(
                namespace: namespace, name: name, phase: phase, node: "node-\(restarts % 2)",
                containers: [
                    ContainerRecord(
                        name: "init", role: .`init`, image: "i", state: "terminated", stateReason: "Completed"),
                    ContainerRecord(
                        name: "app", role: .main, image: "a", state: "waiting", stateReason: "CrashLoopBackOff",
                        restarts: restarts, lastTerminationReason: "Error", lastExitCode: 1),
                ]), labels: labels, isOrphan: false)
    }

    @Test(arguments: MetadataStores.all)
    func jobsAreLeasedRenewedExpiredAndFinished(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            let first = makeSnapshot(createdAt: Self.t0)
            let second = makeSnapshot(createdAt: Self.t0 + 1)
            try await store.insertSnapshot(first, idempotencyKey: nil)
            try await store.insertSnapshot(second, idempotencyKey: nil)

            let a = try #require(try await store.claimIngestJob(worker: "a", now: Self.t0, leaseUntil: Self.t0 + 30))
            #expect(a.snapshot.id == first.id && a.attempt == 1 && a.snapshot.status == .processing)
            let b = try #require(try await store.claimIngestJob(worker: "b", now: Self.t0, leaseUntil: Self.t0 + 30))
            #expect(b.snapshot.id == second.id, "a leased job is not claimed twice")
            #expect(try await store.claimIngestJob(worker: "c", now: Self.t0 + 10, leaseUntil: Self.t0 + 40) == nil)

            let progress = IngestProgress(bytesRead: 1000, entriesRead: 7)
            #expect(try await store.renewIngestLease(first.id, worker: "a", until: Self.t0 + 60, progress: progress))
            #expect(try await store.snapshot(first.id)?.progress == progress)
            #expect(
                try await store.renewIngestLease(first.id, worker: "c", until: Self.t0 + 60, progress: progress)
                    == false)

            // b's lease runs out; c takes over, and b can neither renew nor finish.
            let c = try #require(
                try await store.claimIngestJob(worker: "c", now: Self.t0 + 31, leaseUntil: Self.t0 + 61))
            #expect(c.snapshot.id == second.id && c.attempt == 2)
            #expect(
                try await store.renewIngestLease(second.id, worker: "b", until: Self.t0 + 90, progress: progress)
                    == false)
            #expect(try await store.completeIngest(second.id, worker: "b", counts: .init(), at: Self.t0 + 32) == false)

            try await store.insertIndex(
                IndexBatch(
                    namespaces: ["shop"], resources: [Self.resource("Pod", "shop", "p")],
                    pods: [Self.pod("shop", "p", phase: "Running", restarts: 1, labels: [:])]), of: first.id)
            var counts = SnapshotCounts()
            counts.logLines = 12
            #expect(try await store.completeIngest(first.id, worker: "a", counts: counts, at: Self.t0 + 40))
            let ready = try #require(try await store.snapshot(first.id))
            #expect(ready.status == .ready && ready.updatedAt == Self.t0 + 40)
            #expect(ready.counts?.logLines == 12 && ready.counts?.resources == 1 && ready.counts?.pods == 1)
            #expect(ready.counts?.namespaces == 1)

            #expect(try await store.failIngest(second.id, worker: "c", reason: "gzip is truncated", at: Self.t0 + 50))
            let failed = try #require(try await store.snapshot(second.id))
            #expect(failed.status == .failed && failed.failureReason == "gzip is truncated" && failed.counts == nil)
            #expect(try await store.claimIngestJob(worker: "d", now: Self.t0 + 1000, leaseUntil: Self.t0 + 2000) == nil)

            // A released job is claimable at once.
            let third = makeSnapshot(createdAt: Self.t0 + 2)
            try await store.insertSnapshot(third, idempotencyKey: nil)
            _ = try await store.claimIngestJob(worker: "e", now: Self.t0, leaseUntil: Self.t0 + 600)
            try await store.releaseIngestJob(third.id, worker: "e")
            #expect(
                try await store.claimIngestJob(worker: "f", now: Self.t0 + 1, leaseUntil: Self.t0 + 60)?.attempt == 2)
            #expect(try await store.deleteSnapshot(third.id))
            #expect(
                try await store.renewIngestLease(third.id, worker: "f", until: Self.t0 + 90, progress: progress)
                    == false)
        }
    }

    /// Many workers claiming at once (replicas over one database) never get the same job twice.
    @Test(arguments: MetadataStores.all)
    func concurrentClaimsTakeEachJobOnce(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            var ids: Set<SnapshotID> = []
            for index in 0..<30 {
                let snapshot = makeSnapshot(createdAt: Self.t0 + Double(index))
                try await store.insertSnapshot(snapshot, idempotencyKey: nil)
                ids.insert(snapshot.id)
            }
            let claimed = try await withThrowingTaskGroup(of: [SnapshotID].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var mine: [SnapshotID] = []
                        while let job = try await store.claimIngestJob(
                            worker: "w\(worker)", now: Self.t0, leaseUntil: Self.t0 + 600)
                        {
                            mine.append(job.snapshot.id)
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: [SnapshotID]()) { $0 += $1 }
            }
            #expect(claimed.count == 30, "every job claimed once")
            #expect(Set(claimed) == ids)
        }
    }

    @Test(arguments: MetadataStores.all)
    func resourcesAreFilteredBySelectorAndPagedInOrder(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            let snapshot = makeSnapshot(createdAt: Self.t0)
            try await store.insertSnapshot(snapshot, idempotencyKey: nil)
            var resources: [IndexedResource] = [Self.resource("Node", nil, "node-1", labels: ["zone": "a"])]
            for index in 0..<12 {
                let labels = ["app": index % 3 == 0 ? "web" : "db", "tier": index % 2 == 0 ? "front" : "back"]
                    .merging(index == 4 ? ["app.kubernetes.io/name": "x"] : [:]) { a, _ in a }
                resources.append(
                    Self.resource(index % 2 == 0 ? "Pod" : "Service", "ns-\(index % 2)", "obj-\(index)", labels: labels)
                )
            }
            try await store.insertIndex(IndexBatch(resources: resources), of: snapshot.id)
            try await store.insertIndex(IndexBatch(resources: resources), of: snapshot.id)  // replaced, not doubled

            let all = try await Self.everyPage {
                try await store.resources(of: snapshot.id, ResourceQuery(limit: 5, after: $0))
            }
            #expect(all.count == 13)
            let keys = all.map { [$0.record.kind, $0.record.namespace ?? "", $0.record.name] }
            #expect(keys == keys.sorted { $0.lexicographicallyPrecedes($1) })
            #expect(all.first { $0.record.name == "obj-3" } == resources[4])

            func names(_ selector: String, kind: String? = nil) async throws -> Set<String> {
                let query = ResourceQuery(kind: kind, selector: try LabelSelector(parsing: selector), limit: 100)
                return Set(try await store.resources(of: snapshot.id, query).items.map(\.record.name))
            }
            // Each answer checked against LabelSelector.matches on the same objects.
            for selector in [
                "app=web", "app==db,tier=front", "app!=web", "app in (web, db)", "app notin (web)", "zone", "!zone",
                "app.kubernetes.io/name", "app.kubernetes.io/name=x", "tier!=front,!zone",
            ] {
                let expected = Set(
                    resources.filter { try! LabelSelector(parsing: selector).matches($0.record.labels) }.map(
                        \.record.name))
                #expect(try await names(selector) == expected, "\(selector)")
                #expect(!expected.isEmpty, "\(selector) selects something")
            }
            #expect(try await names("app!=web").contains("node-1"), "a missing key counts as not equal")
            let prefixed = try await store.resources(
                of: snapshot.id, ResourceQuery(namespace: "ns-1", namePrefix: "obj-1", limit: 100))
            #expect(Set(prefixed.items.map(\.record.name)) == ["obj-1", "obj-11"])
            #expect(
                try await store.resource(of: snapshot.id, kind: "Node", namespace: nil, name: "node-1") == resources[0])
            #expect(try await store.resource(of: snapshot.id, kind: "Node", namespace: "ns-0", name: "node-1") == nil)
        }
    }

    @Test(arguments: MetadataStores.all)
    func podsNamespacesAndTheMostRestarted(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            let snapshot = makeSnapshot(createdAt: Self.t0)
            try await store.insertSnapshot(snapshot, idempotencyKey: nil)
            let pods = (0..<15).map {
                Self.pod(
                    "ns-\($0 % 3)", "pod-\($0)", phase: $0 % 4 == 0 ? "Pending" : "Running", restarts: $0 % 5,
                    labels: ["n": "\($0 % 2)"])
            }
            try await store.insertIndex(
                IndexBatch(
                    namespaces: ["ns-0", "ns-1", "ns-2", "empty"],
                    resources: pods.map {
                        Self.resource("Pod", $0.record.namespace, $0.record.name)
                    }, pods: pods), of: snapshot.id)
            let all = try await Self.everyPage { try await store.pods(of: snapshot.id, PodQuery(limit: 4, after: $0)) }
            #expect(all.count == 15)
            let asked = [
                PodKey(namespace: "ns-1", name: "pod-1"), PodKey(namespace: "ns-2", name: "pod-1"),
                PodKey(namespace: "ns-0", name: "pod-12"), PodKey(namespace: "ns-0", name: "gone"),
            ]
            #expect(try await store.listedPods(of: snapshot.id, among: asked) == [asked[0], asked[2]])
            #expect(try await store.listedPods(of: makeSnapshot(createdAt: Self.t0).id, among: asked).isEmpty)
            #expect(try await store.listedPods(of: snapshot.id, among: []).isEmpty)
            #expect(all.first { $0.record.name == "pod-7" } == pods[7], "containers and labels round-trip")
            #expect(try await store.pods(of: snapshot.id, PodQuery(phase: "Pending", limit: 100)).items.count == 4)
            #expect(
                try await store.pods(of: snapshot.id, PodQuery(namespace: "ns-1", node: "node-1", limit: 100)).items
                    .allSatisfy {
                        $0.record.namespace == "ns-1" && $0.record.node == "node-1"
                    })
            let selected = try await store.pods(
                of: snapshot.id, PodQuery(selector: try LabelSelector(parsing: "n=1"), limit: 100))
            #expect(selected.items.count == 7)
            let top = try await store.podsWithMostRestarts(of: snapshot.id, limit: 4)
            #expect(top.map(\.record.restarts) == [4, 4, 4, 3])
            #expect(top.map(\.record.name) == ["pod-9", "pod-4", "pod-14", "pod-3"], "ties by namespace, then name")
            let summaries = try await store.namespaceSummaries(of: snapshot.id)
            #expect(summaries.map(\.name) == ["empty", "ns-0", "ns-1", "ns-2"])
            #expect(
                summaries[1].podsByPhase == ["Pending": 2, "Running": 3] && summaries[1].resourcesByKind == ["Pod": 5])
            #expect(summaries[0].podsByPhase.isEmpty)
            try await store.clearIndex(snapshot.id)
            #expect(try await store.namespaceSummaries(of: snapshot.id).isEmpty)
            #expect(try await store.pods(of: snapshot.id, PodQuery()).items.isEmpty)
        }
    }

    static func everyPage<Item>(_ page: (IndexCursor?) async throws -> Page<Item>) async throws -> [Item] {
        var items: [Item] = []
        var cursor: IndexCursor?
        repeat {
            let next = try await page(cursor)
            items += next.items
            cursor = next.nextCursor.flatMap { token in
                IndexCursor(token: token, arity: 3) ?? IndexCursor(token: token, arity: 2)
            }
        } while cursor != nil
        return items
    }
}

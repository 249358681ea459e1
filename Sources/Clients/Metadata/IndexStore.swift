import KubinModel

/// Holds each snapshot's index: its namespaces, its resources with where their manifests are, its pods.
package protocol IndexStore: Sendable {
    /// Removes every index row of `id` (before a re-ingest).
    func clearIndex(_ id: SnapshotID) async throws

    /// Adds index rows of `id`; a row already present (same key) is replaced.
    func insertIndex(_ batch: IndexBatch, of id: SnapshotID) async throws

    /// Every namespace of `id` with its pod counts by phase and resource counts by kind, by name.
    func namespaceSummaries(of id: SnapshotID) async throws -> [NamespaceSummary]

    /// One page of resources of `id`.
    func resources(of id: SnapshotID, _ query: ResourceQuery) async throws -> Page<IndexedResource>

    /// One resource of `id` (a nil `namespace` for cluster-scoped objects), or nil.
    func resource(of id: SnapshotID, kind: String, namespace: String?, name: String) async throws -> IndexedResource?

    /// One page of pods of `id`.
    func pods(of id: SnapshotID, _ query: PodQuery) async throws -> Page<IndexedPod>

    /// Which of `pods` the index of `id` lists (the others, seen only through their logs, are orphans).
    func listedPods(of id: SnapshotID, among pods: [PodKey]) async throws -> Set<PodKey>

    /// The `limit` pods of `id` with the most restarts (ties by namespace and name), only pods that restarted.
    func podsWithMostRestarts(of id: SnapshotID, limit: Int) async throws -> [IndexedPod]
}

/// Index rows written together.
package struct IndexBatch: Sendable, Equatable {
    package var namespaces: [String] = []
    package var resources: [IndexedResource] = []
    package var pods: [IndexedPod] = []

    package init(namespaces: [String] = [], resources: [IndexedResource] = [], pods: [IndexedPod] = []) {
        self.namespaces = namespaces
        self.resources = resources
        self.pods = pods
    }

    /// True when there is nothing to write.
    package var isEmpty: Bool { namespaces.isEmpty && resources.isEmpty && pods.isEmpty }
}

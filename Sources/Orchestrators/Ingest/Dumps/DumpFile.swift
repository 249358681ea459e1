/// What one file of a snapshot archive is, by its path: both layouts Kubin accepts, with any leading folder.
///
/// - `kubectl cluster-info dump --output-directory`: `nodes.json`, `<ns>/<list>.json`, `<ns>/<pod>/logs.txt` (log
///   blocks between START and END markers).
/// - Troubleshoot support bundles: `cluster-resources/<kind>.json` (cluster-scoped), `cluster-resources/<kind>/<ns>.json`,
///   `cluster-resources/pods/logs/<ns>/<pod>/<container>.log` and `<container>-previous.log`.
package enum DumpFile: Sendable, Equatable {
    /// A JSON List of cluster-scoped objects; `kind` is the item kind the file's name implies, when it does.
    case clusterList(kind: String?)
    /// A JSON List of objects of one namespace.
    case namespacedList(namespace: String, kind: String?)
    /// A cluster-info dump's `logs.txt`: every container's log of one pod, in START/END blocks.
    case podLogBlocks(namespace: String, pod: String)
    /// One container's log, in a support bundle.
    case containerLog(namespace: String, pod: String, container: String, isPrevious: Bool)
    /// Nothing the index needs (API discovery, RBAC checks, redacted secrets, versions).
    case ignored

    /// Item kinds by the file or folder names both layouts use.
    static let kinds: [String: String] = [
        "events": "Event", "replication-controllers": "ReplicationController", "services": "Service",
        "daemonsets": "DaemonSet", "deployments": "Deployment", "replicasets": "ReplicaSet", "pods": "Pod",
        "nodes": "Node", "namespaces": "Namespace", "pvs": "PersistentVolume", "pvcs": "PersistentVolumeClaim",
        "configmaps": "ConfigMap", "cronjobs": "CronJob", "jobs": "Job", "statefulsets": "StatefulSet",
        "ingress": "Ingress", "limitranges": "LimitRange", "storage-classes": "StorageClass",
        "custom-resource-definitions": "CustomResourceDefinition",
    ]

    /// The lists of a cluster-info dump's namespace folder.
    private static let clusterInfoLists: Set = [
        "events", "replication-controllers", "services", "daemonsets", "deployments", "replicasets", "pods",
    ]

    /// Support-bundle folders that hold no Kubernetes objects.
    private static let ignoredBundleFolders: Set = ["auth-cani-list", "image-pull-secrets", "custom-resources"]

    /// Classifies `path` (as the archive readers give it: `/`-separated, relative).
    package static func classify(_ path: String) -> DumpFile {
        let segments = path.split(separator: "/").map(String.init)
        if let bundle = segments.lastIndex(of: "cluster-resources") {
            return classifyBundle(Array(segments[(bundle + 1)...]))
        }
        guard let name = segments.last else { return .ignored }
        if name == "logs.txt", segments.count >= 3 {
            return .podLogBlocks(namespace: segments[segments.count - 3], pod: segments[segments.count - 2])
        }
        guard name.hasSuffix(".json") else { return .ignored }
        let list = String(name.dropLast(".json".count))
        if list == "nodes" { return .clusterList(kind: "Node") }
        if clusterInfoLists.contains(list), segments.count >= 2 {
            return .namespacedList(namespace: segments[segments.count - 2], kind: kinds[list])
        }
        return .ignored
    }

    private static func classifyBundle(_ segments: [String]) -> DumpFile {
        guard let first = segments.first, !ignoredBundleFolders.contains(first) else { return .ignored }
        if first == "pods", segments.count == 5, segments[1] == "logs", segments[4].hasSuffix(".log") {
            var container = String(segments[4].dropLast(".log".count))
            let isPrevious = container.hasSuffix("-previous")
            if isPrevious { container = String(container.dropLast("-previous".count)) }
            return .containerLog(namespace: segments[2], pod: segments[3], container: container, isPrevious: isPrevious)
        }
        if segments.count == 1, first.hasSuffix(".json") {
            let folder = String(first.dropLast(".json".count))
            return kinds[folder].map { .clusterList(kind: $0) } ?? .ignored
        }
        if segments.count == 2, segments[1].hasSuffix(".json"), let kind = kinds[first] {
            return .namespacedList(namespace: String(segments[1].dropLast(".json".count)), kind: kind)
        }
        return .ignored
    }
}

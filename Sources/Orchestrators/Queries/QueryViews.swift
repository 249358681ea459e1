import Clients
import KubinModel

/// A namespace with what metadata and analytics know of it.
package struct NamespaceView: Sendable {
    /// Pods by phase and resources by kind.
    package var summary: NamespaceSummary
    /// Log lines and Warning events; nil when analytics is missing.
    package var activity: NamespaceActivity?
}

/// A page of a listing whose items an optional store completes: the sections it left out say what is missing.
package struct PartialPage<Item: Sendable>: Sendable {
    package var page: Page<Item>
    package var missing: [FanOut.Missing]
}

/// A pod with its log statistics.
package struct PodView: Sendable {
    package var pod: IndexedPod
    /// Its log statistics: zero when it has no logs, nil when analytics is missing.
    package var logs: PodLogStats?
}

/// The landing page.
package struct OverviewView: Sendable {
    /// Pods with most restarts on the overview.
    package static let topRestarts = 10
    /// Newest Warning events on the overview.
    package static let newestWarnings = 20

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

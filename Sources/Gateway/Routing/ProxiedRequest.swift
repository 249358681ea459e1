import Synchronization

/// A request bound for an upstream: the route it matched and the upstream of the table it started on, plus what the
/// forwarder reports back for the access log line (the instance and its latency).
final class ProxiedRequest: Sendable {
    /// What the forwarder learned.
    struct Report: Sendable {
        /// The instance's address; nil when none was chosen.
        var instance: String?
        /// From sending the request to the answer's head.
        var latency: Duration?
    }

    let route: RoutingTable.Route
    let upstream: UpstreamGroup
    private let report = Mutex(Report())

    init(route: RoutingTable.Route, upstream: UpstreamGroup) {
        self.route = route
        self.upstream = upstream
    }

    func record(instance: String, latency: Duration?) {
        report.withLock { $0 = Report(instance: instance, latency: latency) }
    }

    var reported: Report { report.withLock { $0 } }
}

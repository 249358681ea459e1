import Clients
import Logging
import Synchronization

/// The routing table in force and its upstreams. A reload swaps them whole: a request keeps the generation it
/// started with, so requests in flight finish on the table they began on.
package final class Routing: Sendable {
    /// One table and its upstreams at run time.
    package struct Generation: Sendable {
        package var table: RoutingTable
        package var upstreams: [String: UpstreamGroup]
        /// Counts installs, so watchers see a new table.
        package var number: Int
    }

    /// The routing file; nil when the gateway has none (then the table is empty and never reloaded).
    let path: String?
    /// Health checks' client.
    let client: UpstreamClient
    /// The proxy's keep-alive connections to the instances.
    let pools: UpstreamPools
    private let current: Mutex<Generation>
    private let now: @Sendable () -> ContinuousClock.Instant

    /// Throws ``RoutingTable/Invalid`` when an upstream's TLS files do not hold what they should.
    init(
        path: String?, table: RoutingTable, client: UpstreamClient, maxConnectionsPerInstance: Int,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) throws(RoutingTable.Invalid) {
        self.path = path
        self.client = client
        self.pools = UpstreamPools(maxConnectionsPerInstance: maxConnectionsPerInstance)
        self.now = now
        self.current = Mutex(Generation(table: .empty, upstreams: [:], number: 0))
        try install(table)
    }

    package var generation: Generation { current.withLock { $0 } }

    /// Makes `table` the one in force, keeping the upstreams whose entries did not change (and what is known of
    /// their instances).
    func install(_ table: RoutingTable) throws(RoutingTable.Invalid) {
        let previous = generation
        var upstreams: [String: UpstreamGroup] = [:]
        var problems: [String] = []
        for (name, definition) in table.upstreams {
            if let kept = previous.upstreams[name], kept.definition == definition {
                upstreams[name] = kept
                continue
            }
            do {
                let group = try UpstreamGroup(definition, now: now)
                if let old = previous.upstreams[name] { group.replaceInstances(with: old.instances) }
                if case .instances(let listed) = definition.discovery { group.replaceInstances(with: listed) }
                upstreams[name] = group
            } catch {
                problems.append("upstreams.\(name).tls: \(error)")
            }
        }
        if !problems.isEmpty { throw RoutingTable.Invalid(problems: problems) }
        current.withLock { $0 = Generation(table: table, upstreams: upstreams, number: $0.number + 1) }
    }

    /// Reads the routing file again and installs it; a bad file is logged and the table in force stays.
    /// Returns whether a new table was installed.
    @discardableResult
    func reload(logger: Logger) -> Bool {
        guard let path else { return false }
        do {
            let table = try RoutingTable.load(path: path)
            if table == generation.table { return false }
            try install(table)
            logger.notice(
                "routing table reloaded",
                metadata: ["routes": "\(table.routes.count)", "upstreams": "\(table.upstreams.count)"])
            return true
        } catch {
            logger.error(
                "routing table refused; the previous one stays", metadata: ["file": "\(path)", "problems": "\(error)"])
            return false
        }
    }
}

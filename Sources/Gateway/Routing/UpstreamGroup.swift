import AsyncHTTPClient
import Clients
import KubinSupport
import NIOSSL
import Orchestrators
import Synchronization

/// An upstream at run time: its entry of the routing table, the state of its instances, and the TLS configuration
/// of its connections. Kept across reloads of the table while its entry stays the same, so health is not forgotten.
package final class UpstreamGroup: Sendable {
    /// The instance a request was sent to.
    struct Pick: Sendable {
        var index: Int
        var address: String
        /// A probe of the instance's half-open breaker.
        var isProbe = false
    }

    let definition: RoutingTable.Upstream
    /// The routing file's TLS block for `https://` instances (health checks); nil when it has none.
    let tls: TLSConfiguration?
    /// The proxy's TLS context for `https://` instances (the block's, or the system's roots); nil when every
    /// instance is plain HTTP.
    let sslContext: NIOSSLContext?
    private let state: Mutex<UpstreamState>
    private let retriesInFlight = Atomic(0)
    private let now: @Sendable () -> ContinuousClock.Instant

    /// Throws when the TLS files of `definition` do not hold a certificate or key.
    init(_ definition: RoutingTable.Upstream, now: @escaping @Sendable () -> ContinuousClock.Instant) throws {
        self.definition = definition
        self.now = now
        if definition.tls == .init() {
            self.tls = nil
        } else {
            self.tls = try UpstreamClient.tlsConfiguration(
                caFile: definition.tls.caFile, certificateFile: definition.tls.certificateFile,
                privateKeyFile: definition.tls.privateKeyFile)
        }
        let instances: [UpstreamState.Instance] =
            if case .instances(let listed) = definition.discovery { listed } else { [] }
        let usesTLS =
            switch definition.discovery {
            case .instances(let listed): listed.contains { $0.address.hasPrefix("https://") }
            case .addresses(_, _, let scheme, _), .service(_, let scheme, _): scheme == "https"
            }
        self.sslContext = usesTLS ? try NIOSSLContext(configuration: tls ?? .makeClientConfiguration()) : nil
        self.state = Mutex(
            UpstreamState(
                instances: instances, balancer: definition.balancer, outlier: definition.outlierDetection,
                healthCheck: definition.healthCheck, breaker: definition.circuitBreaker))
    }

    var name: String { definition.name }

    /// Where the next request goes.
    enum Choice {
        /// To this instance, counted in flight until ``finish(_:outcome:)``.
        case instance(Pick)
        /// Nowhere: no instance is eligible.
        case noneEligible
        /// Nowhere: the upstream has ``RoutingTable/Upstream/maxRequests`` in flight.
        case saturated
    }

    /// The instance for the next request, and the change of its breaker when choosing it half-opened one. A retry
    /// names the instance it is `avoiding`.
    func choose(avoiding: String? = nil) -> (Choice, CircuitBreaker.Transition?) {
        let now = now()
        return state.withLock { state in
            guard state.inFlight < definition.maxRequests else { return (.saturated, nil) }
            var random = SystemRandomNumberGenerator()
            guard let picked = state.pick(at: now, avoiding: avoiding, using: &random) else {
                return (.noneEligible, nil)
            }
            let pick = Pick(
                index: picked.index, address: state.instances[picked.index].address, isProbe: picked.isProbe)
            return (.instance(pick), picked.transition)
        }
    }

    /// Takes a place in the retry budget (``RetryPolicy/budgetAllows(retriesInFlight:requestsInFlight:)``); false
    /// when the budget is spent. A place taken is given back by ``retryEnded()``.
    func startRetry() -> Bool {
        let requests = state.withLock { $0.inFlight }
        return retriesInFlight.incrementIf {
            definition.retry.budgetAllows(retriesInFlight: $0, requestsInFlight: requests)
        }
    }

    func retryEnded() { retriesInFlight.subtract(1, ordering: .relaxed) }

    /// Records how a request sent to `pick` ended after `duration`: whether that ejected the instance, and the
    /// change of its breaker.
    @discardableResult
    func finish(_ pick: Pick, outcome: UpstreamState.Outcome, duration: Duration) -> UpstreamState.Finished {
        let now = now()
        return state.withLock {
            $0.finish(
                pick.index, address: pick.address, outcome: outcome, isProbe: pick.isProbe, duration: duration,
                at: now)
        }
    }

    /// How long until an ejected instance, or one whose breaker is open, may receive requests again (the earliest);
    /// nil when that is not known.
    var nextReturn: Duration? {
        let now = now()
        return state.withLock { $0.nextReturn(at: now) }
    }

    /// The state of each instance's breaker (instances without one yet are closed).
    var breakerStates: [String: CircuitBreaker.State] { state.withLock { $0.breakers.mapValues(\.state) } }

    /// Records an active health check; returns the instance's new health when it changed.
    func recordCheck(of address: String, passed: Bool) -> Bool? {
        let now = now()
        return state.withLock { $0.recordCheck(of: address, passed: passed, at: now) }
    }

    /// Replaces the instances (DNS discovery), keeping the state of those that stay.
    func replaceInstances(with instances: [UpstreamState.Instance]) {
        state.withLock { $0.replaceInstances(with: instances) }
    }

    var instances: [UpstreamState.Instance] { state.withLock { $0.instances } }

    /// The addresses that may receive requests now.
    var eligibleAddresses: [String] {
        let now = now()
        return state.withLock { $0.eligible(at: now).map(\.address) }
    }
}

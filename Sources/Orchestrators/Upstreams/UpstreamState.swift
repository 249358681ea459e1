/// Active health checking of an upstream's instances: a `GET` of `path` every `interval`; an instance turns
/// unhealthy after `unhealthyThreshold` failed checks in a row and healthy again after `healthyThreshold` passed ones.
package struct HealthCheckPolicy: Sendable, Equatable {
    package var path: String
    package var interval: Duration
    /// A check slower than this fails.
    package var timeout: Duration
    package var healthyThreshold: Int
    package var unhealthyThreshold: Int

    package init(path: String, interval: Duration, timeout: Duration, healthyThreshold: Int, unhealthyThreshold: Int) {
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.healthyThreshold = healthyThreshold
        self.unhealthyThreshold = unhealthyThreshold
    }
}

/// Passive outlier detection, as Envoy's: `consecutiveFailures` failures in a row (a connection that fails or
/// breaks, a time-out, a 5xx) eject an instance for `baseEjectionTime` × the number of times it has been ejected
/// (at most `maxEjectionTime`), unless that would eject more than `maxEjectedPercent` of the upstream.
package struct OutlierPolicy: Sendable, Equatable {
    package var consecutiveFailures: Int
    package var baseEjectionTime: Duration
    package var maxEjectedPercent: Int
    package var maxEjectionTime: Duration

    package init(
        consecutiveFailures: Int = 5, baseEjectionTime: Duration = .seconds(30), maxEjectedPercent: Int = 50,
        maxEjectionTime: Duration = .seconds(300)
    ) {
        self.consecutiveFailures = consecutiveFailures
        self.baseEjectionTime = baseEjectionTime
        self.maxEjectedPercent = maxEjectedPercent
        self.maxEjectionTime = maxEjectionTime
    }
}

/// The health and load of one upstream's instances, and the choice of the instance for each request: a pure state
/// machine (time and randomness are passed in) driven by the proxy, the health checker and discovery.
///
/// An instance receives requests while it is healthy (it starts so, and active checks may turn it unhealthy), not
/// ejected, and its ``CircuitBreaker`` lets calls through. An ejection ends when its time is up or when an active
/// check passes, as in Envoy. Outlier detection counts failures in a row; the breaker a failure share over a window
/// (and slow answers), and lets only a few probes through when its cool-down ends.
package struct UpstreamState: Sendable {
    /// One instance.
    package struct Instance: Sendable, Equatable {
        /// Its address, the identity kept across discovery and reloads (`http://10.0.0.7:8080`).
        package var address: String
        package var weight: Int
        /// As the active checks last decided.
        package var isHealthy = true
        /// Active checks in a row that passed (while unhealthy) or failed (while healthy).
        var checkStreak = 0
        /// Requests in a row that failed.
        var consecutiveFailures = 0
        /// Set while ejected.
        package var ejectedUntil: ContinuousClock.Instant?
        /// Ejections that still count towards the next ejection's length.
        package var ejections = 0
        /// When the last ejection ended.
        var returnedAt: ContinuousClock.Instant?
        package var inFlight = 0

        package init(address: String, weight: Int = 1) {
            self.address = address
            self.weight = weight
        }
    }

    /// How a proxied request ended, for outlier detection.
    package enum Outcome: Sendable {
        /// An answer below 500.
        case success
        /// No answer (connect failure, reset, time-out) or a 5xx.
        case failure
        /// Ended by the client or the gateway (a cancelled request): says nothing about the instance.
        case abandoned
    }

    /// An instance chosen for a request.
    package struct Picked: Sendable, Equatable {
        package var index: Int
        /// A probe of a half-open breaker: report it so to ``finish(_:address:outcome:isProbe:duration:at:)``.
        package var isProbe: Bool
        /// The breaker left its open state for half-open.
        package var transition: CircuitBreaker.Transition?
    }

    /// What a finished request changed.
    package struct Finished: Sendable, Equatable {
        /// The instance was ejected.
        package var ejected = false
        package var transition: CircuitBreaker.Transition?
    }

    package private(set) var instances: [Instance]
    /// By address, made at an instance's first request.
    package private(set) var breakers: [String: CircuitBreaker] = [:]
    private var balancer: LoadBalancer
    private let outlier: OutlierPolicy
    private let healthCheck: HealthCheckPolicy?
    private let breakerPolicy: BreakerPolicy

    package init(
        instances: [Instance], balancer: BalancerKind, outlier: OutlierPolicy, healthCheck: HealthCheckPolicy?,
        breaker: BreakerPolicy = BreakerPolicy()
    ) {
        self.instances = instances
        self.balancer = LoadBalancer(kind: balancer)
        self.outlier = outlier
        self.healthCheck = healthCheck
        self.breakerPolicy = breaker
    }

    /// The instances that may receive requests at `now`.
    package func eligible(at now: ContinuousClock.Instant) -> [Instance] {
        instances.filter { Self.isEligible($0, at: now) && breakers[$0.address].map { $0.admits(at: now) } ?? true }
    }

    /// Chooses the instance for a request and counts it in flight; nil when none may receive requests. A retry
    /// names the instance it is `avoiding` (the one that just failed it), taken again only when no other may.
    package mutating func pick(
        at now: ContinuousClock.Instant, avoiding: String? = nil, using random: inout some RandomNumberGenerator
    ) -> Picked? {
        endEjections(at: now)
        var isEligible = instances.map {
            Self.isEligible($0, at: now) && breakers[$0.address].map { $0.admits(at: now) } ?? true
        }
        if let avoiding, let index = instances.firstIndex(where: { $0.address == avoiding }), isEligible[index],
            isEligible.filter({ $0 }).count > 1
        {
            isEligible[index] = false
        }
        guard
            let index = balancer.pick(
                isEligible: isEligible, weights: instances.map(\.weight), inFlight: instances.map(\.inFlight),
                using: &random)
        else { return nil }
        instances[index].inFlight += 1
        let address = instances[index].address
        let (decision, transition) = breakers[address, default: CircuitBreaker(policy: breakerPolicy, now: now)]
            .acquire(at: now)
        return Picked(index: index, isProbe: decision == .allowed(isProbe: true), transition: transition)
    }

    /// How long until an instance may receive requests again, when only ejections and open breakers keep them all
    /// out (their earliest end); nil when one is out for failing its active checks (no end is known) or none is out.
    package func nextReturn(at now: ContinuousClock.Instant) -> Duration? {
        var earliest: Duration?
        for instance in instances {
            guard instance.isHealthy else { return nil }
            var until = instance.ejectedUntil.map { $0 - now }
            if case .open(let breakerUntil) = breakers[instance.address]?.state {
                until = max(until ?? .zero, breakerUntil - now)
            }
            guard let until, until > .zero else { return nil }
            earliest = min(earliest ?? until, until)
        }
        return earliest
    }

    /// Requests in flight to all instances.
    package var inFlight: Int { instances.reduce(0) { $0 + $1.inFlight } }

    /// Records how the request sent to the instance at `index` (by ``pick(at:avoiding:using:)``) ended after
    /// `duration`: for outlier detection and for the instance's breaker.
    @discardableResult
    package mutating func finish(
        _ index: Int, address: String, outcome: Outcome, isProbe: Bool = false, duration: Duration = .zero,
        at now: ContinuousClock.Instant
    ) -> Finished {
        var finished = Finished()
        let breakerOutcome: CircuitBreaker.Outcome =
            switch outcome {
            case .success: .success
            case .failure: .failure
            case .abandoned: .abandoned
            }
        finished.transition = breakers[address]?.record(breakerOutcome, duration: duration, isProbe: isProbe, at: now)
        // Discovery may have changed the list since the pick: find the instance by its address.
        guard let index = position(of: address, near: index) else { return finished }
        instances[index].inFlight = max(0, instances[index].inFlight - 1)
        switch outcome {
        case .abandoned: break
        case .success: instances[index].consecutiveFailures = 0
        case .failure:
            instances[index].consecutiveFailures += 1
            if instances[index].consecutiveFailures >= outlier.consecutiveFailures,
                instances[index].ejectedUntil == nil, mayEject(at: now)
            {
                eject(index, at: now)
                finished.ejected = true
            }
        }
        return finished
    }

    /// Records an active check of the instance at `address`; returns its health when that changed.
    package mutating func recordCheck(
        of address: String, passed: Bool, at now: ContinuousClock.Instant
    ) -> Bool? {
        guard let index = position(of: address, near: 0), let healthCheck else { return nil }
        var instance = instances[index]
        defer { instances[index] = instance }
        if passed, instance.ejectedUntil != nil {
            instance.ejectedUntil = nil
            instance.returnedAt = now
            instance.consecutiveFailures = 0
        }
        guard passed != instance.isHealthy else {
            instance.checkStreak = 0
            return nil
        }
        instance.checkStreak += 1
        guard instance.checkStreak >= (passed ? healthCheck.healthyThreshold : healthCheck.unhealthyThreshold) else {
            return nil
        }
        instance.isHealthy = passed
        instance.checkStreak = 0
        instance.consecutiveFailures = 0
        return passed
    }

    /// Replaces the instance list (discovery, a reloaded table), keeping what is known of addresses that stay.
    package mutating func replaceInstances(with members: [Instance]) {
        let known = Dictionary(instances.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        instances = members.map { member in
            guard var kept = known[member.address] else { return member }
            kept.weight = member.weight
            return kept
        }
        let addresses = Set(members.map(\.address))
        breakers = breakers.filter { addresses.contains($0.key) }
    }

    private static func isEligible(_ instance: Instance, at now: ContinuousClock.Instant) -> Bool {
        instance.isHealthy && instance.ejectedUntil.map { $0 <= now } ?? true
    }

    private func position(of address: String, near index: Int) -> Int? {
        if instances.indices.contains(index), instances[index].address == address { return index }
        return instances.firstIndex { $0.address == address }
    }

    private mutating func endEjections(at now: ContinuousClock.Instant) {
        for index in instances.indices {
            if let until = instances[index].ejectedUntil, until <= now {
                instances[index].ejectedUntil = nil
                instances[index].returnedAt = until
                instances[index].consecutiveFailures = 0
            }
        }
    }

    /// Whether one more ejection keeps the ejected share within `maxEjectedPercent`.
    private func mayEject(at now: ContinuousClock.Instant) -> Bool {
        let ejected = instances.count { $0.ejectedUntil.map { $0 > now } ?? false }
        return 100 * (ejected + 1) <= outlier.maxEjectedPercent * instances.count
    }

    private mutating func eject(_ index: Int, at now: ContinuousClock.Instant) {
        var instance = instances[index]
        // An ejection is forgotten for each whole base ejection time the instance then served without one.
        if let returned = instance.returnedAt {
            let forgiven = Int((now - returned) / outlier.baseEjectionTime)
            instance.ejections = max(0, instance.ejections - forgiven)
        }
        instance.ejections += 1
        instance.ejectedUntil = now + min(outlier.baseEjectionTime * instance.ejections, outlier.maxEjectionTime)
        instance.consecutiveFailures = 0
        instances[index] = instance
    }
}

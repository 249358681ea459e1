/// How an upstream spreads requests over its instances.
package enum BalancerKind: String, Sendable, CaseIterable {
    /// Each eligible instance in turn.
    case roundRobin = "round-robin"
    /// In proportion to the instances' weights, interleaved (nginx's smooth weighted round-robin).
    case weighted
    /// The less busy of two instances drawn at random (power of two choices over requests in flight, as Envoy).
    case leastRequest = "least-request"
    /// One eligible instance drawn at random.
    case random
}

/// Picks the instance for each request among the eligible ones: a pure state machine whose randomness is passed
/// in, so its distributions are tested exactly and without sockets.
package struct LoadBalancer: Sendable {
    package let kind: BalancerKind
    /// Round-robin's next position in the instance list.
    private var cursor = 0
    /// Smooth weighted round-robin's running weight of each instance.
    private var current: [Int] = []

    package init(kind: BalancerKind) { self.kind = kind }

    /// The index of the chosen instance, or nil when none is eligible.
    ///
    /// - Parameters:
    ///   - isEligible: per instance, whether it may receive requests now (healthy and not ejected).
    ///   - weights: per instance, its weight (at least 1); read by `weighted` only.
    ///   - inFlight: per instance, its requests in flight; read by `least-request` only.
    package mutating func pick(
        isEligible: [Bool], weights: [Int], inFlight: [Int], using random: inout some RandomNumberGenerator
    ) -> Int? {
        let count = isEligible.count
        guard isEligible.contains(true) else { return nil }
        switch kind {
        case .roundRobin:
            for step in 0..<count {
                let index = (cursor + step) % count
                if isEligible[index] {
                    cursor = (index + 1) % count
                    return index
                }
            }
            return nil
        case .weighted:
            if current.count != count { current = Array(repeating: 0, count: count) }
            var total = 0
            var best: Int?
            for index in 0..<count where isEligible[index] {
                current[index] += weights[index]
                total += weights[index]
                if best.map({ current[index] > current[$0] }) ?? true { best = index }
            }
            guard let best else { return nil }
            current[best] -= total
            return best
        case .leastRequest:
            let eligible = (0..<count).filter { isEligible[$0] }
            let first = eligible.randomElement(using: &random)!
            let second = eligible.randomElement(using: &random)!
            return inFlight[second] < inFlight[first] ? second : first
        case .random:
            return (0..<count).filter { isEligible[$0] }.randomElement(using: &random)
        }
    }
}

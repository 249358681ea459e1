import TestSupport
import Testing

@testable import Orchestrators

@Suite struct LoadBalancerTests {
    private func counts(
        _ kind: BalancerKind, eligible: [Bool], weights: [Int]? = nil, inFlight: [Int]? = nil, picks: Int
    ) -> [Int] {
        var balancer = LoadBalancer(kind: kind)
        var random = SeededRandom(seed: 7)
        var counts = Array(repeating: 0, count: eligible.count)
        for _ in 0..<picks {
            let index = balancer.pick(
                isEligible: eligible, weights: weights ?? eligible.map { _ in 1 },
                inFlight: inFlight ?? eligible.map { _ in 0 }, using: &random)
            if let index { counts[index] += 1 }
        }
        return counts
    }

    @Test func roundRobinTakesEachEligibleInstanceInTurn() {
        #expect(counts(.roundRobin, eligible: [true, true, true], picks: 300) == [100, 100, 100])
        #expect(counts(.roundRobin, eligible: [true, false, true], picks: 300) == [150, 0, 150])
        var balancer = LoadBalancer(kind: .roundRobin)
        var random = SeededRandom(seed: 1)
        let order = (0..<6).compactMap { _ in
            balancer.pick(isEligible: [true, true, true], weights: [1, 1, 1], inFlight: [0, 0, 0], using: &random)
        }
        #expect(order == [0, 1, 2, 0, 1, 2])
    }

    @Test func weightedFollowsTheWeightsInterleaved() {
        #expect(counts(.weighted, eligible: [true, true, true], weights: [5, 1, 1], picks: 700) == [500, 100, 100])
        // nginx's smooth order for 5:1:1: the heavy instance never takes more than its share in a row.
        var balancer = LoadBalancer(kind: .weighted)
        var random = SeededRandom(seed: 1)
        let order = (0..<7).compactMap { _ in
            balancer.pick(isEligible: [true, true, true], weights: [5, 1, 1], inFlight: [0, 0, 0], using: &random)
        }
        #expect(order == [0, 0, 1, 0, 2, 0, 0])
        #expect(counts(.weighted, eligible: [true, false, true], weights: [3, 5, 1], picks: 400) == [300, 0, 100])
    }

    @Test func leastRequestSendsLessToTheBusyInstance() {
        let spread = counts(.leastRequest, eligible: [true, true], inFlight: [10, 0], picks: 1000)
        // Two draws with replacement: the busy one wins only when both draws pick it, a quarter of the time.
        #expect((200...300).contains(spread[0]))
        #expect(spread[0] + spread[1] == 1000)
        #expect(counts(.leastRequest, eligible: [false, true], inFlight: [0, 50], picks: 10) == [0, 10])
    }

    @Test func randomSpreadsOverEligibleInstancesOnly() {
        let spread = counts(.random, eligible: [true, false, true, true], picks: 3000)
        #expect(spread[1] == 0)
        for index in [0, 2, 3] { #expect((850...1150).contains(spread[index])) }
    }

    @Test func noEligibleInstanceGivesNone() {
        for kind in BalancerKind.allCases {
            #expect(counts(kind, eligible: [false, false], picks: 5) == [0, 0])
        }
    }
}

@Suite struct UpstreamStateTests {
    private let start = ContinuousClock.now
    /// `count` instances; the breakers stay closed unless `breaker` says otherwise (outlier detection's tests).
    private func state(
        _ count: Int, outlier: OutlierPolicy = .init(consecutiveFailures: 3, baseEjectionTime: .seconds(30)),
        healthCheck: HealthCheckPolicy? = nil, breaker: BreakerPolicy = BreakerPolicy(minimumCalls: 1_000_000)
    ) -> UpstreamState {
        UpstreamState(
            instances: (0..<count).map { .init(address: "http://10.0.0.\($0):80") }, balancer: .roundRobin,
            outlier: outlier, healthCheck: healthCheck, breaker: breaker)
    }

    /// Sends `count` requests at `time` seconds, each ending with `outcome(address)`; returns the addresses used.
    private func serve(
        _ state: inout UpstreamState, _ count: Int, at time: Int, outcome: (String) -> UpstreamState.Outcome
    ) -> [String] {
        var random = SeededRandom(seed: 3)
        let now = start + .seconds(time)
        return (0..<count).compactMap { _ in
            guard let picked = state.pick(at: now, using: &random) else { return nil }
            let address = state.instances[picked.index].address
            state.finish(
                picked.index, address: address, outcome: outcome(address), isProbe: picked.isProbe, at: now)
            return address
        }
    }

    @Test func consecutiveFailuresEjectForTheBaseTimeTimesTheEjections() {
        var upstream = state(2)
        let bad = "http://10.0.0.0:80"
        _ = serve(&upstream, 6, at: 0) { $0 == bad ? .failure : .success }
        #expect(upstream.instances[0].ejectedUntil == start + .seconds(30))
        #expect(!serve(&upstream, 10, at: 1) { _ in .success }.contains(bad))
        // Back after 30 s; failing again right away ejects it for twice as long.
        #expect(serve(&upstream, 2, at: 30) { _ in .success }.contains(bad))
        _ = serve(&upstream, 6, at: 31) { $0 == bad ? .failure : .success }
        #expect(upstream.instances[0].ejections == 2)
        #expect(upstream.instances[0].ejectedUntil == start + .seconds(31 + 60))
        #expect(!serve(&upstream, 10, at: 90) { _ in .success }.contains(bad))
        #expect(serve(&upstream, 10, at: 91) { _ in .success }.contains(bad))
    }

    @Test func aSuccessResetsTheFailureCount() {
        var upstream = state(1, outlier: .init(consecutiveFailures: 3, maxEjectedPercent: 100))
        var next = UpstreamState.Outcome.failure
        _ = serve(&upstream, 10, at: 0) { _ in
            defer { next = next == .failure ? .success : .failure }
            return next
        }
        #expect(upstream.instances[0].ejectedUntil == nil)
    }

    @Test func ejectionsStopAtMaxEjectedPercent() {
        var upstream = state(4, outlier: .init(consecutiveFailures: 1, maxEjectedPercent: 50))
        _ = serve(&upstream, 8, at: 0) { _ in .failure }
        #expect(upstream.instances.count { $0.ejectedUntil != nil } == 2)
        #expect(upstream.eligible(at: start).count == 2)
        // A single instance is never ejected at 50 %: ejecting it would eject the whole upstream.
        var single = state(1, outlier: .init(consecutiveFailures: 1, maxEjectedPercent: 50))
        _ = serve(&single, 5, at: 0) { _ in .failure }
        #expect(single.instances[0].ejectedUntil == nil)
    }

    @Test func abandonedRequestsSayNothingAboutTheInstance() {
        var upstream = state(1, outlier: .init(consecutiveFailures: 1, maxEjectedPercent: 100))
        _ = serve(&upstream, 5, at: 0) { _ in .abandoned }
        #expect(upstream.instances[0].ejectedUntil == nil)
        #expect(upstream.instances[0].inFlight == 0)
    }

    @Test func activeChecksTurnInstancesUnhealthyAndBackAfterTheirThresholds() {
        let policy = HealthCheckPolicy(
            path: "/healthz", interval: .seconds(2), timeout: .seconds(1), healthyThreshold: 2, unhealthyThreshold: 3)
        var upstream = state(2, healthCheck: policy)
        let address = "http://10.0.0.1:80"
        #expect(upstream.recordCheck(of: address, passed: false, at: start) == nil)
        #expect(upstream.recordCheck(of: address, passed: false, at: start) == nil)
        #expect(upstream.recordCheck(of: address, passed: false, at: start) == false)
        #expect(!serve(&upstream, 6, at: 0) { _ in .success }.contains(address))
        #expect(upstream.recordCheck(of: address, passed: true, at: start) == nil)
        // A failure in between starts the count again.
        #expect(upstream.recordCheck(of: address, passed: false, at: start) == nil)
        #expect(upstream.recordCheck(of: address, passed: true, at: start) == nil)
        #expect(upstream.recordCheck(of: address, passed: true, at: start) == true)
        #expect(serve(&upstream, 6, at: 0) { _ in .success }.contains(address))
    }

    @Test func aPassedCheckEndsAnEjection() {
        let policy = HealthCheckPolicy(
            path: "/healthz", interval: .seconds(2), timeout: .seconds(1), healthyThreshold: 1, unhealthyThreshold: 1)
        var upstream = state(2, outlier: .init(consecutiveFailures: 1), healthCheck: policy)
        let bad = "http://10.0.0.0:80"
        _ = serve(&upstream, 2, at: 0) { $0 == bad ? .failure : .success }
        #expect(upstream.instances[0].ejectedUntil != nil)
        _ = upstream.recordCheck(of: bad, passed: true, at: start + .seconds(1))
        #expect(serve(&upstream, 2, at: 1) { _ in .success }.contains(bad))
    }

    @Test func replacingInstancesKeepsWhatIsKnownOfThoseThatStay() {
        var upstream = state(2, outlier: .init(consecutiveFailures: 1))
        let bad = "http://10.0.0.0:80"
        _ = serve(&upstream, 2, at: 0) { $0 == bad ? .failure : .success }
        upstream.replaceInstances(with: [.init(address: bad, weight: 4), .init(address: "http://10.0.0.9:80")])
        #expect(upstream.instances.map(\.address) == [bad, "http://10.0.0.9:80"])
        #expect(upstream.instances[0].ejectedUntil != nil)
        #expect(upstream.instances[0].weight == 4)
    }

    @Test func anInstanceWhoseBreakerOpensGetsNothingUntilItsProbesSucceed() {
        var upstream = state(
            2, outlier: .init(consecutiveFailures: 1_000),
            breaker: BreakerPolicy(minimumCalls: 4, failureRatio: 0.5, coolDown: .seconds(10), probes: 2))
        let bad = "http://10.0.0.0:80"
        // Half of the bad instance's answers fail: at its fourth call the share is met and its breaker opens.
        var calls = 0
        let used = serve(&upstream, 8, at: 0) { address in
            guard address == bad else { return .success }
            calls += 1
            return calls.isMultiple(of: 2) ? .failure : .success
        }
        #expect(used.filter { $0 == bad }.count == 4)
        #expect(upstream.breakers[bad]?.state == .open(until: start + .seconds(10)))
        #expect(!serve(&upstream, 10, at: 5) { _ in .success }.contains(bad))
        #expect(upstream.eligible(at: start + .seconds(5)).map(\.address) == ["http://10.0.0.1:80"])
        // After the cool-down: two probes, then closed again.
        var random = SeededRandom(seed: 1)
        let now = start + .seconds(11)
        var probes: [UpstreamState.Picked] = []
        for _ in 0..<6 {
            if let picked = upstream.pick(at: now, using: &random), upstream.instances[picked.index].address == bad {
                probes.append(picked)
            }
        }
        #expect(probes.count == 2)
        #expect(probes.allSatisfy { $0.isProbe })
        #expect(probes.first?.transition?.to == .halfOpen)
        let closed = probes.compactMap { picked in
            upstream.finish(picked.index, address: bad, outcome: .success, isProbe: true, at: now).transition
        }
        #expect(closed.map(\.to) == [.closed])
        #expect(serve(&upstream, 4, at: 12) { _ in .success }.contains(bad))
    }
}

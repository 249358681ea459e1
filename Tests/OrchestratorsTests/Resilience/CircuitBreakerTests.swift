import Testing

@testable import Orchestrators

/// The breaker's rules on a clock that moves only when the test moves it.
@Suite struct CircuitBreakerTests {
    private let start = ContinuousClock.now
    private let policy = BreakerPolicy(
        window: .seconds(10), minimumCalls: 10, failureRatio: 0.5, slowCallThreshold: .seconds(1),
        coolDown: .seconds(5), probes: 2)

    /// `outcomes` recorded as ordinary calls one millisecond apart from `at`; returns the transitions.
    private func calls(
        _ outcomes: [CircuitBreaker.Outcome], on breaker: inout CircuitBreaker, at offset: Duration = .zero,
        duration: Duration = .milliseconds(10)
    ) -> [CircuitBreaker.Transition] {
        outcomes.enumerated().compactMap { index, outcome in
            let now = start + offset + .milliseconds(index)
            guard case (.allowed(isProbe: false), _) = breaker.acquire(at: now) else { return nil }
            return breaker.record(outcome, duration: duration, isProbe: false, at: now)
        }
    }

    @Test func fewerCallsThanTheMinimumNeverOpenIt() {
        var breaker = CircuitBreaker(policy: policy, now: start)
        #expect(calls(Array(repeating: .failure, count: 9), on: &breaker).isEmpty)
        #expect(breaker.state == .closed)
    }

    @Test func theFailureShareOpensItAndAnOpenBreakerSaysHowLongIsLeft() {
        var breaker = CircuitBreaker(policy: policy, now: start)
        #expect(
            calls(
                [.success, .failure, .success, .failure, .success, .failure, .success, .failure, .success],
                on: &breaker
            ).isEmpty)
        let opened = calls([.failure], on: &breaker, at: .milliseconds(100))
        #expect(opened.map(\.to.gauge) == [2])
        let (decision, _) = breaker.acquire(at: start + .seconds(2) + .milliseconds(100))
        #expect(decision == .refused(retryAfter: .seconds(3)))
    }

    @Test func slowSuccessesCountAsFailures() {
        var breaker = CircuitBreaker(policy: policy, now: start)
        let transitions = calls(Array(repeating: .success, count: 10), on: &breaker, duration: .seconds(2))
        #expect(transitions.count == 1)
        #expect(breaker.state.gauge == 2)
    }

    @Test func failuresOlderThanTheWindowNoLongerCount() {
        var breaker = CircuitBreaker(policy: policy, now: start)
        #expect(calls(Array(repeating: .failure, count: 9), on: &breaker).isEmpty)
        // Eleven seconds later the nine failures are out of the window: one more failure among successes is 10 %.
        let later = calls([.failure] + Array(repeating: .success, count: 9), on: &breaker, at: .seconds(11))
        #expect(later.isEmpty)
        #expect(breaker.state == .closed)
    }

    /// An opened breaker, its cool-down over at `start + 6 s`.
    private func opened() -> CircuitBreaker {
        var breaker = CircuitBreaker(policy: policy, now: start)
        _ = calls(Array(repeating: .failure, count: 10), on: &breaker)
        return breaker
    }

    @Test func halfOpenLetsExactlyTheProbesThroughAndTheirSuccessClosesIt() {
        var breaker = opened()
        let now = start + .seconds(6)
        let (first, moved) = breaker.acquire(at: now)
        #expect(first == .allowed(isProbe: true))
        #expect(moved?.to == .halfOpen)
        #expect(breaker.acquire(at: now).0 == .allowed(isProbe: true))
        // A herd finds the probes out.
        for _ in 0..<100 { #expect(breaker.acquire(at: now).0 == .refused(retryAfter: .seconds(5))) }
        #expect(breaker.record(.success, duration: .milliseconds(5), isProbe: true, at: now) == nil)
        let closed = breaker.record(.success, duration: .milliseconds(5), isProbe: true, at: now)
        #expect(closed == .init(from: .halfOpen, to: .closed))
        // Closed with an empty window: nine failures do not reopen it.
        #expect(calls(Array(repeating: .failure, count: 9), on: &breaker, at: .seconds(6)).isEmpty)
    }

    @Test func aFailedProbeReopensItForAFullCoolDown() {
        var breaker = opened()
        let now = start + .seconds(6)
        _ = breaker.acquire(at: now)
        _ = breaker.acquire(at: now)
        let reopened = breaker.record(.failure, duration: .milliseconds(5), isProbe: true, at: now)
        #expect(reopened?.to == .open(until: now + .seconds(5)))
        // The other probe's late success changes nothing.
        #expect(breaker.record(.success, duration: .milliseconds(5), isProbe: true, at: now) == nil)
        #expect(breaker.acquire(at: now + .seconds(1)).0 == .refused(retryAfter: .seconds(4)))
    }

    @Test func anAbandonedProbeFreesItsPlace() {
        var breaker = opened()
        let now = start + .seconds(6)
        _ = breaker.acquire(at: now)
        _ = breaker.acquire(at: now)
        #expect(breaker.acquire(at: now).0 != .allowed(isProbe: true))
        breaker.record(.abandoned, duration: .zero, isProbe: true, at: now)
        #expect(breaker.acquire(at: now).0 == .allowed(isProbe: true))
    }
}

import TestSupport
import Testing

@testable import Orchestrators

@Suite struct RetryPolicyTests {
    private let policy = RetryPolicy(
        attempts: 4, backoff: .milliseconds(10), maxBackoff: .milliseconds(50), budgetRatio: 0.2, budgetFloor: 3)

    @Test func eachWaitIsRandomUnderAnExponentialBoundCappedAtTheMaximum() {
        var random = SeededRandom(seed: 3)
        for (retry, bound) in [(1, 10), (2, 20), (3, 40), (4, 50), (9, 50)] {
            let waits = (0..<200).map { _ in policy.delay(beforeRetry: retry, using: &random) }
            #expect(waits.allSatisfy { $0 >= .zero && $0 <= .milliseconds(bound) }, "retry \(retry)")
            // Spread over the range, not stuck at one end (full jitter).
            #expect(waits.contains { $0 < .milliseconds(bound) / 4 })
            #expect(waits.contains { $0 > .milliseconds(bound) * 3 / 4 })
        }
    }

    @Test func theBudgetIsAShareOfRequestsInFlightWithAFloor() {
        #expect(policy.budgetAllows(retriesInFlight: 2, requestsInFlight: 0))
        #expect(!policy.budgetAllows(retriesInFlight: 3, requestsInFlight: 10))
        #expect(policy.budgetAllows(retriesInFlight: 19, requestsInFlight: 100))
        #expect(!policy.budgetAllows(retriesInFlight: 20, requestsInFlight: 100))
    }
}

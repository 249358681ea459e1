/// When a failed call is tried again: how many tries in all, how long to wait before each retry, and how many
/// retries may be in flight at once (a budget, as Envoy's: retries cannot multiply an outage).
package struct RetryPolicy: Sendable, Equatable {
    /// Tries in all, the first included; 1 means no retry.
    package var attempts: Int
    /// The first retry waits up to this; each later one up to twice as long as the one before.
    package var backoff: Duration
    /// The longest wait before a retry.
    package var maxBackoff: Duration
    /// Retries in flight at most this share (0...1) of the requests in flight ...
    package var budgetRatio: Double
    /// ... but always at least this many.
    package var budgetFloor: Int

    package init(
        attempts: Int = 2, backoff: Duration = .milliseconds(25), maxBackoff: Duration = .milliseconds(250),
        budgetRatio: Double = 0.2, budgetFloor: Int = 3
    ) {
        self.attempts = attempts
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.budgetRatio = budgetRatio
        self.budgetFloor = budgetFloor
    }

    /// The wait before retry number `retry` (1 for the first): "full jitter", a uniformly random wait between zero
    /// and the exponential bound, so retries of many callers spread out instead of arriving together.
    package func delay(beforeRetry retry: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let doublings = min(max(retry - 1, 0), 30)
        let bound = min(maxBackoff, backoff * (1 << doublings))
        let nanoseconds = bound / .nanoseconds(1)
        guard nanoseconds >= 1 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...Int64(nanoseconds), using: &random))
    }

    /// Whether one more retry fits the budget, with `retries` and `requests` in flight now (the retry not counted).
    package func budgetAllows(retriesInFlight retries: Int, requestsInFlight requests: Int) -> Bool {
        retries < max(budgetFloor, Int(budgetRatio * Double(requests)))
    }
}

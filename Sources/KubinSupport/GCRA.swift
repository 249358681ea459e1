/// The generic cell rate algorithm: `limit` requests per `period`, as a burst of up to `limit` that then refills at
/// one request per `period / limit`. Its whole state per key is one instant, the theoretical arrival time (TAT).
///
/// A pure value: no clock, no storage. ``LocalRateLimitStore`` keeps TATs in memory; ``RedisRateLimitStore`` runs the
/// same arithmetic in a Lua script on the server (the tests hold the two to the same answers).
package struct GCRA: Sendable, Equatable {
    /// Requests allowed per period.
    package var limit: Int
    /// The period, in microseconds.
    package var periodMicros: Int64

    /// A rate of `limit` per `period`.
    package init(limit: Int, period: Duration) {
        self.limit = limit
        self.periodMicros = Int64(period / .microseconds(1))
    }

    /// The time one request uses up, in microseconds.
    package var intervalMicros: Int64 { max(1, periodMicros / Int64(max(limit, 1))) }

    /// What a request at `now` (µs) does to a key whose TAT is `tat` (nil: never seen), and the key's TAT after it.
    package func decide(tat: Int64?, now: Int64) -> (decision: Decision, tat: Int64) {
        let start = max(tat ?? now, now)
        let next = start + intervalMicros
        if next - now > periodMicros {
            // Denied: the TAT stays; a request is allowed again once it is within the period of now.
            return (
                Decision(isAllowed: false, ahead: start - now, retryAfterMicros: next - now - periodMicros, rate: self),
                start
            )
        }
        return (Decision(isAllowed: true, ahead: next - now, retryAfterMicros: 0, rate: self), next)
    }

    /// The outcome of one request.
    package struct Decision: Sendable, Equatable {
        /// Whether the request may proceed.
        package var isAllowed: Bool
        /// How far the TAT is ahead of now, in microseconds: the used part of the period.
        package var ahead: Int64
        /// For a denied request: how long until one would be allowed, in microseconds.
        package var retryAfterMicros: Int64
        /// The rate decided by.
        package var rate: GCRA

        /// Requests still allowed right now.
        package var remaining: Int {
            max(0, Int((rate.periodMicros - ahead) / rate.intervalMicros))
        }

        /// Whole seconds until the full quota is back (the TAT reaches now).
        package var resetSeconds: Int { Int((ahead + 999_999) / 1_000_000) }

        /// Whole seconds to wait before retrying a denied request (at least 1).
        package var retryAfterSeconds: Int { max(1, Int((retryAfterMicros + 999_999) / 1_000_000)) }

        /// The decision from the TAT's distance ahead of now, as a store reports it.
        package init(isAllowed: Bool, ahead: Int64, retryAfterMicros: Int64, rate: GCRA) {
            self.isAllowed = isAllowed
            self.ahead = ahead
            self.retryAfterMicros = retryAfterMicros
            self.rate = rate
        }
    }
}

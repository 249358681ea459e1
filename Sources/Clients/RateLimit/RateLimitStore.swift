import KubinSupport

/// Where rate-limit state lives: one GCRA TAT per key, decided and updated atomically.
///
/// ``LocalRateLimitStore`` (this process) is the embedded default and the fallback; ``RedisRateLimitStore`` shares one
/// limit among replicas.
package protocol RateLimitStore: Sendable {
    /// Decides a request for `key` at `rate` and records it when it is allowed; throws when the store is unreachable.
    func acquire(_ key: String, rate: GCRA) async throws -> GCRA.Decision
}

import Foundation
import KubinSupport
import Synchronization

/// Rate-limit state in this process's memory: exact for one instance, and the fallback while Redis is unreachable.
///
/// TATs in the past are worth nothing (a key whose TAT has passed is a new key), so when the table reaches
/// `maxKeys` those are dropped; if none has passed the table is cleared (it forgets, it never over-limits a key
/// that stays within its rate).
package final class LocalRateLimitStore: RateLimitStore {
    private let tats = Mutex<[String: Int64]>([:])
    private let maxKeys: Int
    private let now: @Sendable () -> Int64

    /// A store of at most `maxKeys` keys; `now` is the time in microseconds.
    package init(maxKeys: Int = 100_000, now: @escaping @Sendable () -> Int64 = LocalRateLimitStore.wallClock) {
        self.maxKeys = maxKeys
        self.now = now
    }

    package func acquire(_ key: String, rate: GCRA) async throws -> GCRA.Decision {
        let now = now()
        return tats.withLock { tats in
            let (decision, tat) = rate.decide(tat: tats[key], now: now)
            if decision.isAllowed {
                if tats.count >= maxKeys, tats[key] == nil {
                    tats = tats.filter { $0.value > now }
                    if tats.count >= maxKeys { tats.removeAll(keepingCapacity: true) }
                }
                tats[key] = tat
            }
            return decision
        }
    }

    /// Microseconds since 1970.
    package static let wallClock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1_000_000) }
}

import Clients
import Crypto
import KubinSupport
import Logging
import Synchronization

/// Holds each principal to its rate per route class, across replicas when the state is shared (Redis).
///
/// While the shared store is unreachable, each instance limits on its own with the rate divided by the number of
/// replicas expected, so the total stays near the limit and nothing fails because the limiter's store did.
package final class RateLimiter: Sendable {
    /// What a request does, for its rate.
    package enum RouteClass: String, Sendable, CaseIterable {
        /// Reads: listings, snapshots, archives, the internal API.
        case query
        /// Uploads.
        case upload
        /// Deletions and other administration.
        case admin
    }

    private let rates: [RouteClass: GCRA]
    private let shared: (any RateLimitStore)?
    private let local: any RateLimitStore
    private let expectedReplicas: Int
    private let logger: Logger
    private let lastWarning = Mutex<ContinuousClock.Instant?>(nil)

    /// A limiter of `rates` (a class without one is unlimited) over `shared` state, or this process's when nil.
    package init(
        rates: [RouteClass: GCRA], shared: (any RateLimitStore)?, local: any RateLimitStore = LocalRateLimitStore(),
        expectedReplicas: Int, logger: Logger
    ) {
        self.rates = rates
        self.shared = shared
        self.local = local
        self.expectedReplicas = max(1, expectedReplicas)
        self.logger = logger
    }

    /// Decides one request of `routeClass` by the caller `tenant`/`subject`; nil when the class is unlimited.
    package func acquire(_ routeClass: RouteClass, tenant: String, subject: String) async -> GCRA.Decision? {
        guard let rate = rates[routeClass] else { return nil }
        // The subject is the caller's text (a token's `sub`): hashed, so keys have one shape and length.
        let digest = SHA256.hash(data: Array(subject.utf8)).prefix(12).hexString
        let key = "\(routeClass.rawValue)/\(tenant)/\(digest)"
        if let shared {
            do {
                return try await shared.acquire(key, rate: rate)
            } catch {
                warnAboutFallback(error)
                var fallback = rate
                fallback.limit = max(1, rate.limit / expectedReplicas)
                return try? await local.acquire(key, rate: fallback)
            }
        }
        return try? await local.acquire(key, rate: rate)
    }

    /// Logs the fallback at most every 10 s: a down Redis must not flood the log.
    private func warnAboutFallback(_ error: any Error) {
        let now = ContinuousClock.now
        let shouldLog = lastWarning.withLock { last in
            guard last.map({ now - $0 >= .seconds(10) }) ?? true else { return false }
            last = now
            return true
        }
        if shouldLog {
            logger.warning(
                "the shared rate limit store is unreachable; limiting per instance (rate ÷ expected replicas)",
                metadata: ["error": "\(error)", "expected_replicas": "\(expectedReplicas)"])
        }
    }
}

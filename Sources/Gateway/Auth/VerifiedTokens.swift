import Crypto
import KubinModel
import Synchronization

/// Principals of tokens whose signature and claims verified, by the token's SHA-256, each until its `exp`: a token
/// seen again costs a hash and a lookup instead of a signature check.
///
/// At most `capacity` entries: when full, expired ones are dropped, and if none had expired the table starts empty
/// again (the cost is one verification per token, never a wrong answer).
final class VerifiedTokens: Sendable {
    private struct Entry: Sendable {
        var principal: Principal
        var expires: Double
    }

    private let entries = Mutex<[SHA256Digest: Entry]>([:])
    private let capacity: Int

    /// A table of at most `capacity` tokens.
    init(capacity: Int = 10_000) { self.capacity = capacity }

    /// The principal of the token whose SHA-256 is `digest`, if it verified before and has not expired at `now`.
    func principal(for digest: SHA256Digest, now: Double) -> Principal? {
        entries.withLock { entries in
            guard let entry = entries[digest] else { return nil }
            guard entry.expires > now else {
                entries[digest] = nil
                return nil
            }
            return entry.principal
        }
    }

    /// Remembers that the token with `digest` proves `principal` until `expires` (seconds since 1970, leeway included).
    func remember(_ principal: Principal, for digest: SHA256Digest, expires: Double, now: Double) {
        entries.withLock { entries in
            if entries.count >= capacity {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[digest] = Entry(principal: principal, expires: expires)
        }
    }
}

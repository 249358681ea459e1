import NIOCore
import Synchronization

/// The embedded ``Cache``: entries in this process's memory, bounded by bytes, least recently used evicted first,
/// each with an optional time to live measured on `clock` (injected so tests need not sleep).
package final class InProcessCache<C: Clock>: Cache where C.Duration == Duration, C.Instant: Sendable {
    private let state: Mutex<LRUCacheState<C.Instant>>
    private let clock: C

    /// A cache holding at most `capacityBytes`.
    package init(capacityBytes: Int, clock: C) {
        self.state = Mutex(LRUCacheState(capacity: capacityBytes))
        self.clock = clock
    }

    package func get(_ key: String) async throws -> ByteBuffer? {
        let now = clock.now
        return state.withLock { $0.get(key, now: now) }
    }

    package func set(_ key: String, value: ByteBuffer, timeToLive: Duration?) async throws {
        let expiresAt = timeToLive.map { clock.now.advanced(by: $0) }
        state.withLock { _ = $0.set(key, value: value, expiresAt: expiresAt) }
    }

    package func delete(_ key: String) async throws {
        state.withLock { $0.delete(key) }
    }

    package func deleteAll(prefix: String) async throws {
        state.withLock { $0.deleteAll(prefix: prefix) }
    }

    package func checkHealth() async throws {}

    /// Bytes the entries take now.
    package var usedBytes: Int { state.withLock { $0.usedBytes } }
}

extension InProcessCache where C == ContinuousClock {
    /// A cache holding at most `capacityBytes`, timed by the continuous clock.
    package convenience init(capacityBytes: Int) {
        self.init(capacityBytes: capacityBytes, clock: ContinuousClock())
    }
}

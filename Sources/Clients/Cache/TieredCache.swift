import NIOCore

/// A shared cache (Redis) with a small in-process tier in front of it.
///
/// Reads try the local tier first; a miss reads the shared cache and keeps what it found locally for at most
/// `localTimeToLive`. Writes and deletions go to both. A replica's local copy is not told about another replica's
/// deletion, so after a snapshot is deleted elsewhere its answers may be served here for up to `localTimeToLive`;
/// that bound is the price of answering hot keys without a network round trip (a 50 KB answer from Redis costs half
/// the gateway's throughput).
package final class TieredCache: Cache {
    private let local: any Cache
    private let shared: any Cache
    private let localTimeToLive: Duration

    /// `local` in front of `shared`, local entries kept at most `localTimeToLive`.
    package init(local: any Cache, shared: any Cache, localTimeToLive: Duration) {
        self.local = local
        self.shared = shared
        self.localTimeToLive = localTimeToLive
    }

    package func get(_ key: String) async throws -> ByteBuffer? {
        if let value = try await local.get(key) { return value }
        guard let value = try await shared.get(key) else { return nil }
        try await local.set(key, value: value, timeToLive: localTimeToLive)
        return value
    }

    package func set(_ key: String, value: ByteBuffer, timeToLive: Duration?) async throws {
        try await shared.set(key, value: value, timeToLive: timeToLive)
        try await local.set(key, value: value, timeToLive: min(timeToLive ?? localTimeToLive, localTimeToLive))
    }

    package func delete(_ key: String) async throws {
        try await local.delete(key)
        try await shared.delete(key)
    }

    package func deleteAll(prefix: String) async throws {
        try await local.deleteAll(prefix: prefix)
        try await shared.deleteAll(prefix: prefix)
    }

    package func checkHealth() async throws {
        try await shared.checkHealth()
    }
}

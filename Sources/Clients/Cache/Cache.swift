import NIOCore

/// A byte cache shared by the gateway's query paths.
///
/// Implementations: ``InProcessCache`` (the embedded default: bounded by bytes, LRU, TTL); Redis comes later.
/// A cache may forget anything at any time; callers treat a miss as normal.
package protocol Cache: Sendable {
    /// The value under `key`, or nil when absent or expired.
    func get(_ key: String) async throws -> ByteBuffer?

    /// Stores `value` under `key`; it expires after `timeToLive`, or only by eviction when nil.
    func set(_ key: String, value: ByteBuffer, timeToLive: Duration?) async throws

    /// Removes `key`; removing a missing key is not an error.
    func delete(_ key: String) async throws

    /// Removes every key that starts with `prefix`.
    func deleteAll(prefix: String) async throws

    /// Throws when the cache cannot serve requests; used by `/readyz`.
    func checkHealth() async throws
}

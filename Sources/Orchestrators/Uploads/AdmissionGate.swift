import Synchronization

/// Counts uploads in flight and refuses one beyond the limit at once, instead of queueing it.
package final class AdmissionGate: Sendable {
    private let inFlight = Mutex(0)
    /// The most uploads admitted at once.
    package let limit: Int

    /// Creates a gate admitting at most `limit` at once.
    package init(limit: Int) { self.limit = limit }

    /// Admitted uploads now.
    package var count: Int { inFlight.withLock { $0 } }

    /// Runs `body` in a slot, or returns nil without running it when every slot is taken.
    package func withSlot<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result? {
        let admitted = inFlight.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
        guard admitted else { return nil }
        defer { inFlight.withLock { $0 -= 1 } }
        return try await body()
    }
}

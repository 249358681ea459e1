import Synchronization

/// Counts uploads in flight, in all and per principal, and refuses one beyond either limit at once instead of
/// queueing it: one caller cannot take every slot.
package final class AdmissionGate: Sendable {
    /// Why an upload got no slot.
    package enum Refusal: Error, Sendable, Equatable {
        /// Every slot of the instance is taken.
        case full
        /// The principal holds its share of the slots.
        case principalFull
    }

    private struct Counts {
        var total = 0
        var byPrincipal: [String: Int] = [:]
    }

    private let counts = Mutex(Counts())
    package let limit: Int
    package let perPrincipalLimit: Int

    package init(limit: Int, perPrincipalLimit: Int) {
        self.limit = limit
        self.perPrincipalLimit = perPrincipalLimit
    }

    /// Admitted uploads now.
    package var count: Int { counts.withLock { $0.total } }

    /// Runs `body` in a slot of `principal`, or returns why not without running it.
    package func withSlot<Result: Sendable>(
        for principal: String, _ body: () async throws -> Result
    ) async throws -> Swift.Result<Result, Refusal> {
        let refusal: Refusal? = counts.withLock { counts in
            guard counts.total < limit else { return .full }
            guard counts.byPrincipal[principal, default: 0] < perPrincipalLimit else { return .principalFull }
            counts.total += 1
            counts.byPrincipal[principal, default: 0] += 1
            return nil
        }
        if let refusal { return .failure(refusal) }
        defer {
            counts.withLock { counts in
                counts.total -= 1
                counts.byPrincipal[principal, default: 1] -= 1
                if counts.byPrincipal[principal] == 0 { counts.byPrincipal[principal] = nil }
            }
        }
        return .success(try await body())
    }
}

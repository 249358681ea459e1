import KubinModel
import Synchronization

/// Runs the branches of one answer concurrently, each under its own deadline within the answer's, on a given clock.
///
/// Every branch keeps its result's type (as lura's merger keeps each backend's): a required branch gives its value,
/// and one that fails or runs past its deadline fails the answer at once (its ``KubinError`` as it is, anything else
/// as `dependency-unavailable` naming the store), cancelling the others; an optional branch gives a ``Section``,
/// missing with a reason instead of failing the answer.
package enum FanOut {
    /// The stores a branch may ask.
    package enum Dependency: String, Sendable {
        case metadata, storage, analytics
    }

    /// A section left out of an answer, and why.
    package struct Missing: Sendable, Equatable {
        /// The section's name, as in the answer.
        package var section: String
        /// Why, for a person.
        package var reason: String
    }

    /// What an optional branch gives: its value, or why it is missing.
    package enum Section<Value: Sendable>: Sendable {
        case present(Value)
        case missing(Missing)

        package var value: Value? {
            if case .present(let value) = self { return value }
            return nil
        }

        package var missing: Missing? {
            if case .missing(let missing) = self { return missing }
            return nil
        }
    }

    /// One concurrent part of an answer.
    package struct Branch<Output: Sendable>: Sendable {
        fileprivate let section: String
        fileprivate let dependency: Dependency
        fileprivate let operation: @Sendable () async throws -> Output
        /// What an optional branch gives when it fails; nil for a required one.
        fileprivate let fallback: (@Sendable (Missing) -> Output)?

    }

    /// A branch filling `section` from `dependency`, whose failure fails the answer.
    package static func required<Output>(
        _ section: String, from dependency: Dependency, _ operation: @escaping @Sendable () async throws -> Output
    ) -> Branch<Output> {
        Branch(section: section, dependency: dependency, operation: operation, fallback: nil)
    }

    /// A branch filling `section` from `dependency`, whose failure leaves the section out of the answer.
    package static func optional<Value>(
        _ section: String, from dependency: Dependency, _ operation: @escaping @Sendable () async throws -> Value
    ) -> Branch<Section<Value>> {
        Branch(
            section: section, dependency: dependency, operation: { .present(try await operation()) },
            fallback: { .missing($0) })
    }

    /// Runs `branches` concurrently on `clock`; each ends by `deadline` and within `branchTimeout` of now.
    package static func run<C: Clock, each Output: Sendable>(
        on clock: C, until deadline: C.Instant, branchTimeout: Duration, _ branches: repeat Branch<each Output>
    ) async throws -> (repeat each Output) where C.Duration == Duration {
        let branchDeadline = min(deadline, clock.now.advanced(by: branchTimeout))
        let slots = (repeat Slot<each Output>())
        var tasks: [@Sendable () async throws -> Void] = []
        for (branch, slot) in repeat (each branches, each slots) {
            tasks.append(branch.task(into: slot, on: clock, until: branchDeadline))
        }
        // A required branch that throws ends the group at once: the others are cancelled, the error rethrown.
        try await withThrowingDiscardingTaskGroup { group in
            for task in tasks { group.addTask(operation: task) }
        }
        return (repeat (each slots).take())
    }

    /// Runs `body`, giving up with ``DeadlineExceeded`` at `deadline` on `clock` (cancelling it).
    static func withDeadline<C: Clock, Value: Sendable>(
        _ deadline: C.Instant, on clock: C, _ body: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await clock.sleep(until: deadline, tolerance: nil)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw DeadlineExceeded() }
            return value
        }
    }
}

extension FanOut.Branch {
    /// The task that runs the branch into `slot`: its value, an optional branch's fallback, or a thrown error.
    fileprivate func task<C: Clock>(
        into slot: Slot<Output>, on clock: C, until deadline: C.Instant
    ) -> @Sendable () async throws -> Void {
        { [self] in
            do {
                slot.put(try await FanOut.withDeadline(deadline, on: clock, operation))
            } catch {
                let why = error is DeadlineExceeded ? "did not answer in time" : "failed"
                if let fallback {
                    slot.put(fallback(FanOut.Missing(section: section, reason: "the \(dependency) store \(why)")))
                } else if let error = error as? KubinError {
                    throw error
                } else {
                    throw KubinError(.dependencyUnavailable, "The \(dependency) store \(why).", retryAfterSeconds: 1)
                }
            }
        }
    }
}

/// Where one branch leaves its result for ``FanOut/run(on:until:branchTimeout:_:)``.
private final class Slot<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)

    func put(_ result: Value) { value.withLock { $0 = result } }

    /// The result; called only once every branch's task has returned without throwing, so it is there.
    func take() -> Value {
        guard let result = value.withLock({ $0 }) else { preconditionFailure("a fan-out branch left no result") }
        return result
    }
}

/// A branch ran past its deadline.
struct DeadlineExceeded: Error {}

import KubinModel

/// Runs the branches of one answer concurrently in a task group, each under its own deadline within the request's.
///
/// A required branch that fails or times out fails the answer (its ``KubinError`` as it is, anything else as
/// `dependency-unavailable`), cancelling the others at once; an optional one becomes a ``Missing`` section.
package struct FanOut: Sendable {
    /// A section left out of an answer, and why.
    package struct Missing: Sendable, Equatable {
        /// The section's name, as in the answer.
        package var section: String
        /// Why, for a person.
        package var reason: String
    }

    /// One concurrent part of an answer.
    package struct Branch: Sendable {
        let section: String
        let dependency: String
        let isRequired: Bool
        let run: @Sendable () async throws -> any Sendable

        /// A branch filling `section` from the store named `dependency`.
        package init(
            _ section: String, from dependency: String, required: Bool,
            _ run: @escaping @Sendable () async throws -> any Sendable
        ) {
            self.section = section
            self.dependency = dependency
            self.isRequired = required
            self.run = run
        }
    }

    /// What the branches produced.
    package struct Results: Sendable {
        fileprivate var values: [String: any Sendable] = [:]
        /// Optional sections that failed.
        package fileprivate(set) var missing: [Missing] = []

        /// The value of `section`, nil when it is missing.
        package func value<Value>(_ section: String, as type: Value.Type = Value.self) -> Value? {
            values[section] as? Value
        }
    }

    /// The longest a branch may take.
    package var branchTimeout: Duration

    /// Creates a fan-out with a per-branch timeout.
    package init(branchTimeout: Duration) { self.branchTimeout = branchTimeout }

    /// Runs `branches` concurrently; every branch ends by `deadline` at the latest.
    package func run(_ branches: [Branch], deadline: ContinuousClock.Instant) async throws -> Results {
        let branchDeadline = min(deadline, .now + branchTimeout)
        return try await withThrowingTaskGroup(of: (Branch, Result<any Sendable, any Error>).self) { group in
            for branch in branches {
                group.addTask {
                    do {
                        return (branch, .success(try await Self.withDeadline(branchDeadline, branch.run)))
                    } catch {
                        return (branch, .failure(error))
                    }
                }
            }
            var results = Results()
            for try await (branch, result) in group {
                switch result {
                case .success(let value):
                    results.values[branch.section] = value
                case .failure(let error) where branch.isRequired:
                    group.cancelAll()
                    if let error = error as? KubinError { throw error }
                    throw KubinError(
                        .dependencyUnavailable, "The \(branch.dependency) store \(Self.describe(error)).",
                        retryAfterSeconds: 1)
                case .failure(let error):
                    results.missing.append(
                        Missing(
                            section: branch.section, reason: "the \(branch.dependency) store \(Self.describe(error))"))
                }
            }
            results.missing.sort { $0.section < $1.section }
            return results
        }
    }

    private static func describe(_ error: any Error) -> String {
        error is DeadlineExceeded ? "did not answer in time" : "failed"
    }

    /// Runs `body`, giving up with ``DeadlineExceeded`` at `deadline` (cancelling it).
    static func withDeadline<Value: Sendable>(
        _ deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw DeadlineExceeded() }
            return value
        }
    }
}

/// A branch ran past its deadline.
struct DeadlineExceeded: Error {}

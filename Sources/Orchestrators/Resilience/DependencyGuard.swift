import Clients
import KubinModel
import KubinSupport
import Synchronization

/// What stands between the gateway and one store: a ``CircuitBreaker`` and a bulkhead (a bound on calls in flight).
///
/// Every call of a guarded store (``GuardedMetadataStore`` and its siblings) passes ``run(retryable:_:)``, or, when
/// it streams through a closure of its caller, ``runStreaming(retryable:counting:_:)``. Past the bulkhead, or while
/// the breaker refuses, the call fails at once with 503 `dependency-unavailable` naming the store, its Retry-After
/// the breaker's remaining cool-down: no time-out is paid and the store is not hammered. A call's
/// outcome feeds the breaker: an error the store answered with (a missing object, a duplicate key, a problem of the
/// caller's) is a success, a cancelled call counts neither way, anything else is a failure, and so is a success
/// slower than the policy's slow-call threshold.
///
/// A call that may be repeated (a read, or a write idempotent by construction: the wrappers say which) and failed is
/// tried again by its ``RetryPolicy``: full-jitter back-off, and retries in flight bounded by the policy's budget, so
/// that retries cannot multiply an outage; a refusal of the guard itself is never retried.
package final class DependencyGuard: Sendable {
    /// The store's name in problems, metrics and logs: `metadata`, `storage`, `analytics`, `cache`.
    package let name: String
    /// The most calls in flight at once.
    package let maxConcurrentCalls: Int
    /// How long a call (not a streaming one) may take before it is given up as failed; nil: as long as it takes.
    package let callTimeout: Duration?
    private let breaker: Mutex<CircuitBreaker>
    /// What the last failed call threw, described: the cause of a refusal, for logs and `/readyz`.
    private let lastFailure = Mutex<String?>(nil)
    private let inFlight = Atomic<Int>(0)
    private let retriesInFlight = Atomic<Int>(0)
    private let retry: RetryPolicy
    private let sleep: @Sendable (Duration) async throws -> Void
    private let now: @Sendable () -> ContinuousClock.Instant
    private let events: @Sendable (Event) -> Void

    /// What the gateway learns of, for its metrics and log.
    package enum Event: Sendable {
        /// The breaker changed state.
        case transition(dependency: String, CircuitBreaker.Transition)
        /// A call was refused: `reason` is `circuit-open` or `saturated`.
        case rejected(dependency: String, reason: String)
        /// A failed call is tried again.
        case retried(dependency: String)
        /// A call outlived the time limit and is being cancelled (logged: a call that does not end when cancelled
        /// holds its caller).
        case timedOut(dependency: String)
    }

    package init(
        name: String, policy: BreakerPolicy, maxConcurrentCalls: Int, callTimeout: Duration? = nil,
        retry: RetryPolicy = RetryPolicy(),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        events: @escaping @Sendable (Event) -> Void = { _ in }
    ) {
        self.name = name
        self.callTimeout = callTimeout
        self.retry = retry
        self.sleep = sleep
        self.maxConcurrentCalls = maxConcurrentCalls
        self.now = now
        self.events = events
        self.breaker = Mutex(CircuitBreaker(policy: policy, now: now()))
    }

    /// The breaker's state now.
    package var state: CircuitBreaker.State { breaker.withLock { $0.state } }

    /// Runs `call` when the bulkhead has room and the breaker lets it through, giving it up as failed past
    /// ``callTimeout`` (503 `dependency-unavailable`, not tried again: the store is too slow, not flaky); after
    /// another failure it is tried again while `retryable` says it may be and the policy and its budget allow.
    package func run<Result: Sendable>(
        retryable: () -> Bool = { false }, _ call: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        do {
            return try await runStreaming(retryable: retryable) { try await self.withinTimeLimit(call) }
        } catch is CallTimedOut {
            let limit = callTimeout.map { "\($0)" } ?? "its time"
            throw KubinError(
                .dependencyUnavailable, "The \(name) store did not answer within \(limit); retry later.",
                retryAfterSeconds: 1)
        }
    }

    /// ``run(retryable:_:)`` for a call that may always be repeated: a read, or a write idempotent by construction.
    package func runRepeatable<Result: Sendable>(
        _ call: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await run(retryable: { true }, call)
    }

    /// Runs `call` like ``run(retryable:_:)`` but without the time limit, for a call that streams through a closure
    /// of its caller (and ends when its task is cancelled); `counting` says whether an error it throws is the store's
    /// failure (the default rule above when nil).
    package func runStreaming<Result>(
        retryable: () -> Bool = { false }, counting isFailure: ((any Error) -> Bool)? = nil,
        _ call: () async throws -> Result
    ) async throws -> Result {
        var retries = 0
        // Held from a retry's wait to the end of its try.
        var holdsRetryPlace = false
        defer { if holdsRetryPlace { retriesInFlight.subtract(1, ordering: .relaxed) } }
        while true {
            do {
                return try await once(counting: isFailure, call)
            } catch {
                if holdsRetryPlace {
                    retriesInFlight.subtract(1, ordering: .relaxed)
                    holdsRetryPlace = false
                }
                let wasFailure =
                    !(error is CancellationError) && !Task.isCancelled && (isFailure ?? Self.isFailure)(error)
                guard wasFailure, !(error is CallTimedOut), retries + 1 < retry.attempts, retryable(),
                    takeRetryPlace()
                else { throw error }
                holdsRetryPlace = true
                retries += 1
                events(.retried(dependency: name))
                var random = SystemRandomNumberGenerator()
                try await sleep(retry.delay(beforeRetry: retries, using: &random))
            }
        }
    }

    /// `call`, or ``CallTimedOut`` once ``callTimeout`` has passed (the call is cancelled; every store's call ends
    /// when cancelled, PostgreSQL's by closing its connection).
    private func withinTimeLimit<Result: Sendable>(
        _ call: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        guard let limit = callTimeout else { return try await call() }
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask { try await call() }
            group.addTask {
                try await self.sleep(limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                events(.timedOut(dependency: name))
                throw CallTimedOut()
            }
            return value
        }
    }

    /// One try of `call` through the bulkhead and the breaker.
    private func once<Result>(
        counting isFailure: ((any Error) -> Bool)?, _ call: () async throws -> Result
    ) async throws -> Result {
        guard takePlace() else {
            events(.rejected(dependency: name, reason: "saturated"))
            throw KubinError(
                .dependencyUnavailable,
                "The \(name) store has \(maxConcurrentCalls) calls in flight, as many as the gateway sends it; retry "
                    + "shortly.", retryAfterSeconds: 1)
        }
        defer { inFlight.subtract(1, ordering: .relaxed) }
        let (decision, transition) = breaker.withLock { $0.acquire(at: now()) }
        if let transition { events(.transition(dependency: name, transition)) }
        guard case .allowed(let isProbe) = decision else {
            events(.rejected(dependency: name, reason: "circuit-open"))
            let wait = if case .refused(let retryAfter) = decision { retryAfter } else { Duration.seconds(1) }
            throw KubinError(
                .dependencyUnavailable,
                "The \(name) store is unavailable: its circuit breaker is open after repeated failures; retry later.",
                retryAfterSeconds: max(1, Int((wait / .seconds(1)).rounded(.up))),
                underlying: lastFailure.withLock { $0 }.map(LastFailure.init))
        }
        let started = now()
        do {
            let result = try await call()
            record(.success, since: started, isProbe: isProbe)
            return result
        } catch {
            let outcome: CircuitBreaker.Outcome =
                if error is CancellationError || Task.isCancelled {
                    .abandoned
                } else if (isFailure ?? Self.isFailure)(error) {
                    .failure
                } else {
                    .success
                }
            if outcome == .failure { lastFailure.withLock { $0 = "\(error)" } }
            record(outcome, since: started, isProbe: isProbe)
            throw error
        }
    }

    private func takePlace() -> Bool { inFlight.incrementIf { $0 < maxConcurrentCalls } }

    /// A place in the retry budget, counted against the calls in flight now.
    private func takeRetryPlace() -> Bool {
        retriesInFlight.incrementIf {
            retry.budgetAllows(retriesInFlight: $0, requestsInFlight: inFlight.load(ordering: .relaxed))
        }
    }

    private func record(_ outcome: CircuitBreaker.Outcome, since started: ContinuousClock.Instant, isProbe: Bool) {
        let now = now()
        let transition = breaker.withLock {
            $0.record(outcome, duration: now - started, isProbe: isProbe, at: now)
        }
        if let transition { events(.transition(dependency: name, transition)) }
    }

    /// Whether `error` is the store failing, as opposed to an answer it gave.
    static func isFailure(_ error: any Error) -> Bool {
        switch error {
        case is KubinError: false
        case let error as MetadataStoreError: !error.isIdempotencyKeyConflict
        case let error as ObjectStoreError: !error.isNotFound && !error.isRangeOutOfBounds
        default: true
        }
    }
}

/// A store call outlived its guard's time limit.
struct CallTimedOut: Error {}

/// The failure that opened a breaker, as the underlying error of its refusals.
package struct LastFailure: Error, CustomStringConvertible {
    /// What the failed call threw.
    package let description: String
}

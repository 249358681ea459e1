/// When a breaker opens and how it closes again.
package struct BreakerPolicy: Sendable, Equatable {
    /// How far back the failure ratio looks.
    package var window: Duration
    /// Calls the window must hold before its ratio means anything.
    package var minimumCalls: Int
    /// The share of failed calls (0...1) that opens the breaker.
    package var failureRatio: Double
    /// A call that succeeds slower than this counts as a failure; nil: speed does not count.
    package var slowCallThreshold: Duration?
    /// How long an open breaker refuses calls before it lets probes through.
    package var coolDown: Duration
    /// Probe calls let through while half-open; this many successes close the breaker.
    package var probes: Int

    package init(
        window: Duration = .seconds(10), minimumCalls: Int = 20, failureRatio: Double = 0.5,
        slowCallThreshold: Duration? = nil, coolDown: Duration = .seconds(5), probes: Int = 3
    ) {
        self.window = window
        self.minimumCalls = minimumCalls
        self.failureRatio = failureRatio
        self.slowCallThreshold = slowCallThreshold
        self.coolDown = coolDown
        self.probes = probes
    }
}

/// A circuit breaker as a pure state machine: the caller asks before a call (``acquire(at:)``) and reports how it
/// went (``record(_:duration:isProbe:at:)``), passing the time each time, so every rule is tested with a clock that
/// only moves when the test moves it.
///
/// Closed, it counts calls and failures over a sliding ``BreakerPolicy/window`` (ten buckets); at
/// ``BreakerPolicy/minimumCalls`` or more with a failure share at or above ``BreakerPolicy/failureRatio`` it opens.
/// Open, it refuses every call for ``BreakerPolicy/coolDown``, saying how long is left. Then half-open, it lets
/// exactly ``BreakerPolicy/probes`` calls through (never a herd) and refuses the rest: one failed probe opens it for a
/// new cool-down, all probes succeeding close it with an empty window.
package struct CircuitBreaker: Sendable {
    package enum State: Sendable, Equatable {
        case closed
        case open(until: ContinuousClock.Instant)
        case halfOpen

        /// The value of `gateway_circuit_breaker_state`: 0 closed, 1 half-open, 2 open.
        package var gauge: Int {
            switch self {
            case .closed: 0
            case .halfOpen: 1
            case .open: 2
            }
        }

        package var name: String {
            switch self {
            case .closed: "closed"
            case .halfOpen: "half-open"
            case .open: "open"
            }
        }
    }

    /// The answer to a caller about to call.
    package enum Decision: Sendable, Equatable {
        /// Call; report the outcome with `isProbe`.
        case allowed(isProbe: Bool)
        /// Do not call; the breaker may let a call through after `retryAfter`.
        case refused(retryAfter: Duration)
    }

    /// How a call went.
    package enum Outcome: Sendable, Equatable {
        case success
        case failure
        /// Given up before it ended (the caller went away): counts neither way, frees a probe's place.
        case abandoned
    }

    /// A change of state, for a log line and the gauge.
    package struct Transition: Sendable, Equatable {
        package var from: State
        package var to: State
    }

    package let policy: BreakerPolicy
    package private(set) var state = State.closed
    private let origin: ContinuousClock.Instant
    private var buckets: [Bucket]
    private var probesInFlight = 0
    private var probeSuccesses = 0

    private struct Bucket {
        /// Which slice of time (since `origin`) it counts; a bucket of an older slice is reset when reused.
        var slice = -1
        var calls = 0
        var failures = 0
    }

    private static let bucketCount = 10

    /// A closed breaker; `now` anchors its window.
    package init(policy: BreakerPolicy, now: ContinuousClock.Instant) {
        self.policy = policy
        self.origin = now
        self.buckets = Array(repeating: Bucket(), count: Self.bucketCount)
    }

    /// Whether ``acquire(at:)`` would let a call through at `now` (without taking a probe's place).
    package func admits(at now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed: true
        case .open(let until): now >= until
        case .halfOpen: probesInFlight + probeSuccesses < policy.probes
        }
    }

    /// Whether a call may go ahead now. Moves an open breaker whose cool-down is over to half-open.
    package mutating func acquire(at now: ContinuousClock.Instant) -> (Decision, Transition?) {
        var transition: Transition?
        if case .open(let until) = state {
            guard now >= until else { return (.refused(retryAfter: until - now), nil) }
            transition = move(to: .halfOpen)
            probesInFlight = 0
            probeSuccesses = 0
        }
        switch state {
        case .closed:
            return (.allowed(isProbe: false), transition)
        case .halfOpen:
            guard probesInFlight + probeSuccesses < policy.probes else {
                // The probes are out: a caller retries after them, about a cool-down at most.
                return (.refused(retryAfter: policy.coolDown), transition)
            }
            probesInFlight += 1
            return (.allowed(isProbe: true), transition)
        case .open:
            return (.refused(retryAfter: policy.coolDown), transition)
        }
    }

    /// Records how an allowed call went (`duration`: how long it took).
    @discardableResult
    package mutating func record(
        _ outcome: Outcome, duration: Duration, isProbe: Bool, at now: ContinuousClock.Instant
    ) -> Transition? {
        let failed =
            outcome == .failure
            || (outcome == .success && policy.slowCallThreshold.map { duration > $0 } ?? false)
        if isProbe {
            guard case .halfOpen = state else { return nil }
            probesInFlight -= 1
            switch outcome {
            case .abandoned: return nil
            case _ where failed: return move(to: .open(until: now + policy.coolDown))
            default:
                probeSuccesses += 1
                guard probeSuccesses >= policy.probes else { return nil }
                resetWindow()
                return move(to: .closed)
            }
        }
        // Calls let through before the breaker opened do not move it again.
        guard case .closed = state, outcome != .abandoned else { return nil }
        let slice = self.slice(at: now)
        let index = slice % Self.bucketCount
        if buckets[index].slice != slice { buckets[index] = Bucket(slice: slice) }
        buckets[index].calls += 1
        if failed { buckets[index].failures += 1 }
        var calls = 0
        var failures = 0
        for bucket in buckets where bucket.slice > slice - Self.bucketCount {
            calls += bucket.calls
            failures += bucket.failures
        }
        guard calls >= policy.minimumCalls, Double(failures) >= policy.failureRatio * Double(calls) else { return nil }
        resetWindow()
        return move(to: .open(until: now + policy.coolDown))
    }

    private func slice(at now: ContinuousClock.Instant) -> Int {
        let width = policy.window / Self.bucketCount
        return Int((now - origin) / width)
    }

    private mutating func resetWindow() { buckets = Array(repeating: Bucket(), count: Self.bucketCount) }

    private mutating func move(to next: State) -> Transition {
        let transition = Transition(from: state, to: next)
        state = next
        return transition
    }
}

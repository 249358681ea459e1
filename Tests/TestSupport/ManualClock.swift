import Foundation
import Synchronization

/// A clock that moves only when a test moves it, so time-based code is tested without sleeping or wall-clock checks.
///
/// It is a `Clock` (a sleep suspends until ``advance(by:)`` passes its deadline, or until it is cancelled) and a wall
/// clock (``date``) for code that takes `() -> Date`.
package final class ManualClock: Clock, Sendable {
    package struct Instant: InstantProtocol {
        /// Time since the clock was made.
        package var offset: Duration
        package func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        package func duration(to other: Instant) -> Duration { other.offset - offset }
        package static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Int: Sleeper] = [:]
        var nextSleeper = 0
    }

    private let state = Mutex(State())
    private let start: Date

    /// A clock whose ``date`` starts at `start`, rounded down to a whole second so that every time it moves to is
    /// exact in microseconds.
    package init(start: Date = Date(timeIntervalSince1970: 1_700_000_000)) {
        self.start = Date(timeIntervalSince1970: start.timeIntervalSince1970.rounded(.down))
    }

    package var now: Instant { state.withLock { $0.now } }
    package var minimumResolution: Duration { .nanoseconds(1) }

    /// The wall-clock time: `start` plus how far the clock has been moved.
    package var date: Date {
        start.addingTimeInterval(
            Double(now.offset.components.seconds) + Double(now.offset.components.attoseconds) / 1e18)
    }

    /// How many sleeps are suspended on this clock now; with `within`, only those that wake within it of now.
    package func sleepers(wakingWithin within: Duration? = nil) -> Int {
        state.withLock { state in
            guard let within else { return state.sleepers.count }
            let horizon = state.now.advanced(by: within)
            return state.sleepers.values.count { $0.deadline <= horizon }
        }
    }

    /// Moves the clock on, waking every sleep whose deadline it reaches.
    package func advance(by duration: Duration) {
        let woken = state.withLock { state in
            state.now = state.now.advanced(by: duration)
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    /// Waits (polling, at most `timeout` of real time) until exactly `count` sleeps are suspended on this clock
    /// (with `within`, that wake within it of now): then moving the clock wakes exactly those.
    package func waitForSleepers(
        _ count: Int, wakingWithin within: Duration? = nil, timeout: Duration = .seconds(30)
    ) async throws {
        try await poll("\(count) sleeps on the manual clock", timeout: timeout) {
            self.sleepers(wakingWithin: within) == count
        }
    }

    package func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = state.withLock { state in
            defer { state.nextSleeper += 1 }
            return state.nextSleeper
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Under the lock: a cancellation that came first is seen here, one that comes later finds the sleeper.
                let resumeNow: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let resumeNow { continuation.resume(with: resumeNow) }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
    }
}

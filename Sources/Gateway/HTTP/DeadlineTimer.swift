import NIOCore

/// A deadline that moves with every request on a connection (its head's, its answer's), watched by at most one
/// scheduled callback.
///
/// Scheduling and cancelling a callback per request costs a heap insertion and removal on the event loop, about 4% of
/// a proxied request's CPU each time. Here a deadline later than the armed callback costs nothing: when the callback
/// fires before the deadline in force, it is armed again for it. A busy keep-alive connection thus schedules about
/// once per time-out instead of once per request. The owner holds the timer, arms it through `arm`, and calls
/// ``fired(now:arm:)`` from its callback.
struct DeadlineTimer<Armed: CancellableCallback> {
    /// The deadline in force; nil when nothing is watched.
    private(set) var deadline: NIODeadline?
    private var armed: (callback: Armed, at: NIODeadline)?

    /// Watches `deadline` in place of any other; `arm` schedules a callback for a time only when none fires by it.
    mutating func watch(_ deadline: NIODeadline, arm: (NIODeadline) -> Armed?) {
        self.deadline = deadline
        if let armed, armed.at <= deadline { return }
        armed?.callback.cancel()
        armed = arm(deadline).map { ($0, deadline) }
    }

    /// Nothing is watched; the armed callback stays and finds nothing when it fires.
    mutating func clear() { deadline = nil }

    /// The armed callback fired at `now`: true when the deadline in force has passed (and is cleared); when it is
    /// still ahead, a callback is armed for it.
    mutating func fired(now: NIODeadline, arm: (NIODeadline) -> Armed?) -> Bool {
        armed = nil
        guard let deadline else { return false }
        if now >= deadline {
            self.deadline = nil
            return true
        }
        armed = arm(deadline).map { ($0, deadline) }
        return false
    }

    /// Nothing is watched and no callback is armed (the connection closed).
    mutating func cancel() {
        armed?.callback.cancel()
        armed = nil
        deadline = nil
    }
}

/// A scheduled callback that can be called off.
protocol CancellableCallback { func cancel() }

extension NIOScheduledCallback: CancellableCallback {}

import NIOCore
import Testing

@testable import Gateway

@Suite struct DeadlineTimerTests {
    /// A callback that records its cancellation.
    private final class Callback: CancellableCallback {
        let at: NIODeadline
        var isCancelled = false
        init(at: NIODeadline) { self.at = at }
        func cancel() { isCancelled = true }
    }

    /// Arms callbacks and remembers them, in order.
    private final class Scheduler {
        var armed: [Callback] = []
        func arm(_ deadline: NIODeadline) -> Callback? {
            armed.append(Callback(at: deadline))
            return armed.last
        }
    }

    private static func at(_ seconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(seconds) * 1_000_000_000) }

    @Test func laterDeadlinesReuseTheArmedCallbackWhichArmsAgainForThem() {
        let scheduler = Scheduler()
        var timer = DeadlineTimer<Callback>()
        timer.watch(Self.at(10), arm: scheduler.arm)
        timer.clear()
        timer.watch(Self.at(12), arm: scheduler.arm)
        timer.watch(Self.at(15), arm: scheduler.arm)
        #expect(scheduler.armed.map(\.at) == [Self.at(10)])

        // It fires at 10, before the deadline in force: armed again for 15, nothing passed.
        let early = timer.fired(now: Self.at(10), arm: scheduler.arm)
        #expect(!early)
        #expect(scheduler.armed.map(\.at) == [Self.at(10), Self.at(15)])
        let due = timer.fired(now: Self.at(15), arm: scheduler.arm)
        #expect(due)
        #expect(timer.deadline == nil)
        #expect(scheduler.armed.count == 2)
    }

    @Test func anEarlierDeadlineCancelsTheArmedCallback() {
        let scheduler = Scheduler()
        var timer = DeadlineTimer<Callback>()
        timer.watch(Self.at(30), arm: scheduler.arm)
        timer.watch(Self.at(5), arm: scheduler.arm)
        #expect(scheduler.armed.map(\.at) == [Self.at(30), Self.at(5)])
        #expect(scheduler.armed.map(\.isCancelled) == [true, false])
        let due = timer.fired(now: Self.at(5), arm: scheduler.arm)
        #expect(due)
    }

    @Test func aClearedDeadlineFiresForNothingAndArmsNothing() {
        let scheduler = Scheduler()
        var timer = DeadlineTimer<Callback>()
        timer.watch(Self.at(10), arm: scheduler.arm)
        timer.clear()
        let passed = timer.fired(now: Self.at(10), arm: scheduler.arm)
        #expect(!passed)
        #expect(scheduler.armed.count == 1)
        // The next deadline needs a callback again.
        timer.watch(Self.at(20), arm: scheduler.arm)
        #expect(scheduler.armed.map(\.at) == [Self.at(10), Self.at(20)])
    }

    @Test func cancellingCallsTheArmedCallbackOff() {
        let scheduler = Scheduler()
        var timer = DeadlineTimer<Callback>()
        timer.watch(Self.at(10), arm: scheduler.arm)
        timer.cancel()
        #expect(scheduler.armed.first?.isCancelled == true)
        #expect(timer.deadline == nil)
    }
}

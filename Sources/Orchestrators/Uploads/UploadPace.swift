import NIOCore
import Synchronization

/// The pace an upload's body must keep, Apache mod_reqtimeout's rule for bodies: its first bytes within `timeout`,
/// no gap between two chunks longer than `timeout`, and on average at least `minBytesPerSecond` (each that many
/// bytes earn one more second beyond the first `timeout`). A body at least that fast never runs out of time; a
/// trickle does, however regular, so slow clients cannot hold upload slots.
///
/// Pure: times are durations since the upload began, so it is tested without a clock.
package struct UploadPace: Sendable, Equatable {
    package let timeout: Duration
    /// 0: only the gap rule.
    package let minBytesPerSecond: Int64
    package private(set) var received: Int64 = 0
    private var lastChunk: Duration = .zero

    package init(timeout: Duration, minBytesPerSecond: Int64) {
        self.timeout = timeout
        self.minBytesPerSecond = minBytesPerSecond
    }

    package mutating func received(_ bytes: Int, at time: Duration) {
        received += Int64(bytes)
        lastChunk = time
    }

    /// When the body has run out of time unless more bytes come first.
    package var deadline: Duration {
        let gap = lastChunk + timeout
        guard minBytesPerSecond > 0 else { return gap }
        return min(gap, timeout + .seconds(Double(received) / Double(minBytesPerSecond)))
    }
}

/// An upload body that ran out of time (``UploadPace``).
struct BodyTooSlow: Error {}

/// The pace of one body as its chunks arrive, and the watch that ends it when it runs out of time.
final class PaceWatch: Sendable {
    private let pace: Mutex<UploadPace>
    private let clock: PaceClock
    /// When the body began, on `clock`.
    private let start: Duration

    init(_ pace: UploadPace, clock: PaceClock) {
        self.pace = Mutex(pace)
        self.clock = clock
        self.start = clock.elapsed()
    }

    func received(_ bytes: Int) {
        let now = clock.elapsed() - start
        pace.withLock { $0.received(bytes, at: now) }
    }

    /// Returns only by throwing: ``BodyTooSlow`` once the body has run out of time, or the cancellation that ends it.
    func watch() async throws {
        while true {
            let deadline = pace.withLock { $0.deadline }
            if clock.elapsed() - start >= deadline { throw BodyTooSlow() }
            try await clock.sleep(until: start + deadline)
        }
    }
}

/// A clock reduced to what the pace needs: the time since it was made, and a sleep until such a time (the
/// continuous clock in production, a manual one in tests).
package struct PaceClock: Sendable {
    let elapsed: @Sendable () -> Duration
    let sleep: @Sendable (_ until: Duration) async throws -> Void

    package init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let start = clock.now
        elapsed = { start.duration(to: clock.now) }
        sleep = { try await clock.sleep(until: start.advanced(by: $0), tolerance: nil) }
    }

    func sleep(until time: Duration) async throws { try await sleep(time) }
}

/// A body whose chunks are reported to a ``PaceWatch`` as they arrive.
struct PacedBody<Base: AsyncSequence<ByteBuffer, any Error> & Sendable>: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    typealias Failure = any Error

    let base: Base
    let watch: PaceWatch

    func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), watch: watch) }

    struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let watch: PaceWatch

        mutating func next() async throws -> ByteBuffer? {
            let chunk = try await base.next()
            if let chunk { watch.received(chunk.readableBytes) }
            return chunk
        }
    }
}

import Clients
import Foundation
import KubinModel
import KubinSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import Orchestrators

/// The guard of a store on a clock that moves only when the test moves it.
@Suite struct DependencyGuardTests {
    /// A clock and everything the guard reported.
    private final class Harness: Sendable {
        private let clock = Mutex(ContinuousClock.now)
        private let reported = Mutex<[DependencyGuard.Event]>([])

        func now() -> ContinuousClock.Instant { clock.withLock { $0 } }
        func advance(_ duration: Duration) { clock.withLock { $0 += duration } }

        var transitions: [String] {
            reported.withLock {
                $0.compactMap {
                    guard case .transition(_, let change) = $0 else { return nil }
                    return "\(change.from.name)→\(change.to.name)"
                }
            }
        }

        var rejections: [String] {
            reported.withLock {
                $0.compactMap {
                    guard case .rejected(_, let reason) = $0 else { return nil }
                    return reason
                }
            }
        }

        var retries: Int { reported.withLock { $0.filter { if case .retried = $0 { true } else { false } }.count } }

        func guarding(
            _ name: String = "metadata", maxConcurrentCalls: Int = 8, minimumCalls: Int = 4,
            callTimeout: Duration? = nil, retry: RetryPolicy = RetryPolicy(attempts: 1),
            sleep: @escaping @Sendable (Duration) async throws -> Void = { _ in }
        ) -> DependencyGuard {
            DependencyGuard(
                name: name,
                policy: BreakerPolicy(
                    window: .seconds(10), minimumCalls: minimumCalls, failureRatio: 0.5, coolDown: .seconds(5),
                    probes: 2),
                maxConcurrentCalls: maxConcurrentCalls, callTimeout: callTimeout, retry: retry, now: { self.now() },
                sleep: sleep,
                events: { event in self.reported.withLock { $0.append(event) } })
        }
    }

    private struct Broken: Error {}

    private final class Counter: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        @discardableResult func add() -> Int {
            count.withLock {
                $0 += 1; return $0
            }
        }
        func reset() { count.withLock { $0 = 0 } }
    }

    /// The error `call` failed with through `guarded` (nil: it succeeded), and whether its body ran.
    private func outcome(
        of guarded: DependencyGuard, _ body: @Sendable () async throws -> Void = { throw Broken() }
    ) async -> (error: (any Error)?, ran: Bool) {
        var ran = false
        do {
            try await guarded.runStreaming {
                ran = true
                try await body()
            }
            return (nil, ran)
        } catch {
            return (error, ran)
        }
    }

    @Test func failuresOpenItAndThenCallsFailAtOnceWithTheCoolDownLeft() async {
        let harness = Harness()
        let guarded = harness.guarding()
        for _ in 0..<4 { _ = await outcome(of: guarded) }
        #expect(guarded.state.name == "open")

        let refused = await outcome(of: guarded) {}
        #expect(!refused.ran)
        let error = refused.error as? KubinError
        #expect(error?.code == .dependencyUnavailable)
        #expect(error?.retryAfterSeconds == 5)
        #expect(error?.detail.contains("metadata") == true)
        harness.advance(.milliseconds(3200))
        #expect((await outcome(of: guarded) {}).error.flatMap { $0 as? KubinError }?.retryAfterSeconds == 2)

        // After the cool-down, exactly the probes go through; their success closes it.
        harness.advance(.seconds(2))
        #expect(await outcome(of: guarded) {}.ran)
        #expect(await outcome(of: guarded) {}.ran)
        #expect(guarded.state == .closed)
        #expect(harness.transitions == ["closed→open", "open→half-open", "half-open→closed"])
        #expect(harness.rejections == ["circuit-open", "circuit-open"])
    }

    @Test func answersOfTheStoreAndCancelledCallsAreNotFailures() async {
        let harness = Harness()
        let guarded = harness.guarding()
        let answers: [any Error] = [
            KubinError(.notFound, "no such snapshot"), ObjectStoreError.notFound(ObjectKey(validating: "a")!),
            MetadataStoreError.idempotencyKeyExists, CancellationError(),
        ]
        for _ in 0..<3 {
            for answer in answers { _ = await outcome(of: guarded) { throw answer } }
        }
        #expect(guarded.state == .closed)
        // Past the window of those answers, four real failures open it.
        harness.advance(.seconds(11))
        for _ in 0..<4 { _ = await outcome(of: guarded) }
        #expect(guarded.state.name == "open")
    }

    @Test func pastItsCallsInFlightTheBulkheadRefusesAtOnce() async throws {
        let harness = Harness()
        let guarded = harness.guarding(maxConcurrentCalls: 1)
        let (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
        let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await guarded.run {
                    enteredContinuation.yield()
                    for await _ in release { break }
                }
            }
            for await _ in entered { break }
            let refused = await outcome(of: guarded) {}
            #expect(!refused.ran)
            #expect((refused.error as? KubinError)?.code == .dependencyUnavailable)
            #expect((refused.error as? KubinError)?.detail.contains("1 calls in flight") == true)
            releaseContinuation.yield()
            try await group.waitForAll()
        }
        #expect(await outcome(of: guarded) {}.ran)
        #expect(harness.rejections == ["saturated"])
        #expect(guarded.state == .closed)
    }

    @Test func aRepeatableCallIsTriedAgainAfterFailuresWithJitteredWaitsAndOthersAreNot() async throws {
        let harness = Harness()
        let waits = Mutex<[Duration]>([])
        // A breaker that stays closed: here only retries are looked at.
        let guarded = harness.guarding(
            minimumCalls: 100, retry: RetryPolicy(attempts: 3, backoff: .milliseconds(100), maxBackoff: .seconds(1)),
            sleep: { wait in waits.withLock { $0.append(wait) } })
        let tries = Counter()
        let value = try await guarded.runRepeatable {
            let count = tries.add()
            if count < 3 { throw Broken() }
            return "answer"
        }
        #expect(value == "answer" && tries.value == 3)
        let recorded = waits.withLock { $0 }
        #expect(recorded.count == 2 && recorded[0] <= .milliseconds(100) && recorded[1] <= .milliseconds(200))
        #expect(harness.retries == 2)

        // Not repeatable, an answer of the store, or out of attempts: the error as it came.
        tries.reset()
        await #expect(throws: Broken.self) {
            try await guarded.run {
                tries.add(); throw Broken()
            }
        }
        await #expect(throws: KubinError.self) {
            try await guarded.runRepeatable {
                tries.add(); throw KubinError(.notFound, "none")
            }
        }
        await #expect(throws: Broken.self) {
            try await guarded.runRepeatable {
                tries.add(); throw Broken()
            }
        }
        #expect(tries.value == 1 + 1 + 3)
    }

    /// The guard's sleep ends when the test says: time passes only then.
    @Test func aCallPastItsTimeLimitIsCancelledAndCountsAsAFailure() async throws {
        let harness = Harness()
        let (elapsed, elapse) = AsyncStream<Void>.makeStream()
        let guarded = harness.guarding(
            callTimeout: .seconds(10), retry: RetryPolicy(attempts: 3),
            sleep: { _ in for await _ in elapsed { break } })
        let cancelled = Counter()
        for round in 1...4 {
            async let answer: Void = guarded.runRepeatable {
                do {
                    try await Task.sleep(for: .seconds(3600))
                } catch {
                    cancelled.add()
                    throw error
                }
            }
            elapse.yield()
            var failure: (any Error)?
            do { try await answer } catch { failure = error }
            let error = failure as? KubinError
            #expect(error?.code == .dependencyUnavailable && error?.detail.contains("did not answer within") == true)
            #expect(cancelled.value == round, "the call was cancelled, and not tried again")
        }
        #expect(guarded.state.name == "open")
        #expect(harness.retries == 0)
    }

    @Test func aCountUnderALimitGivesEachPlaceOnceUnderContention() async {
        let places = Places()
        let taken = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<200 { group.addTask { places.count.incrementIf { $0 < 10 } } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(taken == 10 && places.count.load(ordering: .relaxed) == 10)
    }

    private final class Places: Sendable { let count = Atomic<Int>(0) }

    @Test func retriesInFlightStayWithinTheBudget() async throws {
        let harness = Harness()
        let (sleeping, sleepingContinuation) = AsyncStream<Void>.makeStream()
        let (wake, wakeContinuation) = AsyncStream<Void>.makeStream()
        let guarded = harness.guarding(
            minimumCalls: 100, retry: RetryPolicy(attempts: 2, budgetRatio: 0.2, budgetFloor: 3),
            sleep: { _ in
                sleepingContinuation.yield()
                for await _ in wake { break }
            })
        let tries = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Three failing calls wait for their retries: the budget's floor.
            for _ in 0..<3 {
                group.addTask {
                    _ = try? await guarded.runRepeatable {
                        tries.add(); throw Broken()
                    }
                }
            }
            var asleep = 0
            for await _ in sleeping {
                asleep += 1
                if asleep == 3 { break }
            }
            // A fourth failure finds the budget spent: no retry.
            await #expect(throws: Broken.self) {
                try await guarded.runRepeatable {
                    tries.add(); throw Broken()
                }
            }
            #expect(tries.value == 4)
            for _ in 0..<3 { wakeContinuation.yield() }
            try await group.waitForAll()
        }
        #expect(tries.value == 7)
        #expect(harness.retries == 3)
    }

    @Test func aReaderOrUploaderThatFailsIsNotTheStoresFailure() async throws {
        let harness = Harness()
        let guarded = harness.guarding("storage")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = GuardedObjectStore(
            try await LocalObjectStore.open(root: directory.path, threadPool: .singleton), guard: guarded)
        let key = try #require(ObjectKey(validating: "objects/a"))
        let bytes = AsyncThrowingStream<ByteBuffer, any Error> {
            $0.yield(ByteBuffer(string: "stored bytes"))
            $0.finish()
        }
        _ = try await store.put(key, body: bytes)
        for _ in 0..<6 {
            await #expect(throws: Broken.self) { try await store.read(key, range: nil) { _ in throw Broken() } }
            await #expect(throws: Broken.self) {
                _ = try await store.put(ObjectKey(validating: "objects/b")!, body: FailingBody())
            }
        }
        #expect(guarded.state == .closed)
        var read = ByteBuffer()
        try await store.read(key, range: nil) { read.writeImmutableBuffer($0) }
        #expect(String(buffer: read) == "stored bytes")
    }

    /// An upload body that breaks after its first part.
    private struct FailingBody: AsyncSequence {
        typealias Element = ByteBuffer
        struct AsyncIterator: AsyncIteratorProtocol {
            var sent = false
            mutating func next() async throws -> ByteBuffer? {
                guard !sent else { throw Broken() }
                sent = true
                return ByteBuffer(string: "part")
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator() }
    }
}

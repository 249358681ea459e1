import Clients
import Foundation
import KubinModel
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

        func guarding(_ name: String = "metadata", maxConcurrentCalls: Int = 8) -> DependencyGuard {
            DependencyGuard(
                name: name,
                policy: BreakerPolicy(
                    window: .seconds(10), minimumCalls: 4, failureRatio: 0.5, coolDown: .seconds(5), probes: 2),
                maxConcurrentCalls: maxConcurrentCalls, now: { self.now() },
                events: { event in self.reported.withLock { $0.append(event) } })
        }
    }

    private struct Broken: Error {}

    /// The error `call` failed with through `guarded` (nil: it succeeded), and whether its body ran.
    private func outcome(
        of guarded: DependencyGuard, _ body: @Sendable () async throws -> Void = { throw Broken() }
    ) async -> (error: (any Error)?, ran: Bool) {
        var ran = false
        do {
            try await guarded.run {
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

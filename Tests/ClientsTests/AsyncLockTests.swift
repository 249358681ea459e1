import Synchronization
import Testing

@testable import Clients

@Suite struct AsyncLockTests {
    @Test func onlyOneHolderAtATimeEvenAcrossSuspensions() async throws {
        final class Counts: Sendable {
            let holders = Mutex(0)
            let maximum = Mutex(0)
        }
        let lock = AsyncLock()
        let counts = Counts()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    try await lock.withLock {
                        let now = counts.holders.withLock {
                            $0 += 1; return $0
                        }
                        counts.maximum.withLock { $0 = max($0, now) }
                        await Task.yield()
                        await Task.yield()
                        counts.holders.withLock { $0 -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(counts.maximum.withLock { $0 } == 1)
        #expect(counts.holders.withLock { $0 } == 0)
    }

    @Test func anErrorReleasesTheLock() async throws {
        struct Failure: Error {}
        let lock = AsyncLock()
        await #expect(throws: Failure.self) { try await lock.withLock { throw Failure() } }
        let value = try await lock.withLock { 7 }
        #expect(value == 7)
    }
}

import NIOCore
import Synchronization
import TestSupport
import Testing

@testable import Clients

@Suite struct InProcessCacheTests {
    @Test func entriesExpireAfterTheirTimeToLive() async throws {
        let clock = ManualClock()
        let cache = InProcessCache(capacityBytes: 1 << 20, clock: clock)
        try await cache.set("a", value: ByteBuffer(string: "1"), timeToLive: .seconds(10))
        try await cache.set("b", value: ByteBuffer(string: "2"), timeToLive: nil)
        clock.advance(by: .seconds(9))
        #expect(try await cache.get("a") == ByteBuffer(string: "1"))
        clock.advance(by: .seconds(1))
        #expect(try await cache.get("a") == nil)
        #expect(try await cache.get("b") == ByteBuffer(string: "2"))
        try await cache.delete("b")
        #expect(try await cache.get("b") == nil)
        #expect(cache.usedBytes == 0)
    }

    @Test func concurrentWritersKeepTheBound() async throws {
        let cache = InProcessCache(capacityBytes: 50_000)
        await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<500 {
                        try await cache.set(
                            "t\(task)-\(index)", value: ByteBuffer(repeating: 1, count: 200), timeToLive: nil)
                        _ = try await cache.get("t\(task)-\(index / 2)")
                    }
                }
            }
        }
        #expect(cache.usedBytes <= 50_000)
        #expect(cache.usedBytes > 40_000)
    }
}

import Foundation
import KubinSupport
import Logging
import Synchronization
import TestSupport
import Testing

@testable import Clients

/// GCRA's arithmetic, and one behaviour suite for the rate-limit stores (this process's memory, Redis).
@Suite struct GCRATests {
    @Test func aBurstOfTheLimitPassesThenOneRequestPerInterval() {
        let rate = GCRA(limit: 10, period: .seconds(60))  // one request per 6 s
        var tat: Int64?
        let start: Int64 = 1_000_000_000
        for index in 0..<10 {
            let (decision, next) = rate.decide(tat: tat, now: start)
            #expect(decision.isAllowed, "request \(index)")
            #expect(decision.remaining == 9 - index)
            tat = next
        }
        let (refused, unchanged) = rate.decide(tat: tat, now: start)
        #expect(!refused.isAllowed && refused.remaining == 0 && unchanged == tat)
        #expect(refused.retryAfterSeconds == 6 && refused.resetSeconds == 60)
        // 6 s later exactly one more passes.
        let (later, afterLater) = rate.decide(tat: tat, now: start + 6_000_000)
        #expect(later.isAllowed && later.remaining == 0)
        #expect(!rate.decide(tat: afterLater, now: start + 6_000_000).decision.isAllowed)
        // After a whole period of silence the full burst is back.
        #expect(rate.decide(tat: afterLater, now: start + 66_000_000).decision.remaining == 9)
    }

    @Test func noWindowEverAllowsMoreThanTheBurstPlusTheRefills() {
        // Property: over random request times, every window of length w allows at most limit + w / interval + 1
        // (the burst, then one per interval), and the whole run no more than that over its length.
        var generator = SeededRandom.forThisRun()
        for _ in 0..<50 {
            let limit = Int.random(in: 1...20, using: &generator)
            let rate = GCRA(limit: limit, period: .seconds(10))
            var now: Int64 = 0
            var tat: Int64?
            var allowedAt: [Int64] = []
            for _ in 0..<400 {
                now += Int64.random(in: 0...400_000, using: &generator)
                let (decision, next) = rate.decide(tat: tat, now: now)
                tat = next
                if decision.isAllowed { allowedAt.append(now) }
            }
            for window in [rate.intervalMicros, rate.periodMicros / 2, rate.periodMicros, now] {
                let bound = limit + Int(window / rate.intervalMicros) + 1
                for (index, time) in allowedAt.enumerated() {
                    let inWindow = allowedAt[index...].prefix { $0 < time + window }.count
                    #expect(
                        inWindow <= bound,
                        "limit \(limit), window \(window) µs: \(inWindow) > \(bound); \(generator.replay)")
                }
            }
            // Requests keep coming faster than the rate, so the limiter let through close to the whole allowance.
            #expect(allowedAt.count >= Int(now / rate.intervalMicros) - 1, "\(generator.replay)")
        }
    }
}

enum RateLimitStores {
    static let local = StoreFactory<any RateLimitStore>(name: "in-process", open: { (LocalRateLimitStore(), {}) })
    static let redis = StoreFactory<any RateLimitStore>(
        name: "Redis",
        open: {
            let client = try RedisClient(try TestServers.redis())
            return (
                RedisRateLimitStore(client: client, keyPrefix: "test:\(UUID().uuidString):"), { await client.close() }
            )
        })
    static let all = [local, redis]
}

@Suite struct RateLimitStoreBehaviourTests {
    @Test(arguments: RateLimitStores.all)
    func aKeyGetsItsLimitAndOthersAreUntouched(_ factory: StoreFactory<any RateLimitStore>) async throws {
        try await factory.with { store in
            // An hour: Redis decides on its own clock, so the figures below allow for the seconds the test takes.
            let rate = GCRA(limit: 5, period: .seconds(3600))
            var remaining: [Int] = []
            for _ in 0..<5 {
                let decision = try await store.acquire("alice", rate: rate)
                #expect(decision.isAllowed)
                remaining.append(decision.remaining)
            }
            #expect(remaining == [4, 3, 2, 1, 0])
            let refused = try await store.acquire("alice", rate: rate)
            #expect(!refused.isAllowed && refused.remaining == 0)
            #expect((660...720).contains(refused.retryAfterSeconds), "\(refused.retryAfterSeconds)")
            #expect((3540...3600).contains(refused.resetSeconds), "\(refused.resetSeconds)")
            #expect(try await store.acquire("bob", rate: rate).isAllowed)
        }
    }

    @Test(arguments: RateLimitStores.all)
    func concurrentRequestsNeverExceedTheLimit(_ factory: StoreFactory<any RateLimitStore>) async throws {
        try await factory.with { store in
            let rate = GCRA(limit: 20, period: .seconds(3600))
            let allowed = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<200 { group.addTask { try await store.acquire("shared", rate: rate).isAllowed } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(allowed == 20)
        }
    }
}

@Suite struct LocalRateLimitStoreTests {
    @Test func aFullTableDropsPassedKeysFirst() async throws {
        let clock = Mutex<Int64>(0)
        let store = LocalRateLimitStore(maxKeys: 3, now: { clock.withLock { $0 } })
        let rate = GCRA(limit: 2, period: .seconds(1))
        for key in ["a", "b", "c"] { _ = try await store.acquire(key, rate: rate) }
        _ = try await store.acquire("a", rate: rate)
        #expect(try await !store.acquire("a", rate: rate).isAllowed)
        clock.withLock { $0 = 10_000_000 }  // every TAT has passed: "d" makes room by dropping them
        #expect(try await store.acquire("d", rate: rate).isAllowed)
        #expect(try await store.acquire("a", rate: rate).remaining == 1, "a's passed state was forgotten")
    }
}

import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import Clients

/// The implementations of ``Cache``; every behaviour test runs against all.
enum Caches {
    static let inProcess = StoreFactory<any Cache>(name: "in-process") {
        (InProcessCache(capacityBytes: 1 << 20), {})
    }

    /// Redis, under a key prefix of its own per test, so tests on one server never see each other's keys.
    static let redis = StoreFactory<any Cache>(name: "Redis") { body in
        let client = try RedisClient(try TestServers.redis())
        let cache = RedisCache(client: client, keyPrefix: "test-\(UUID().uuidString):")
        do {
            try await body(cache)
            try await cache.deleteAll(prefix: "")
            await client.close()
        } catch {
            await client.close()
            throw error
        }
    }

    /// Redis with the gateway's in-process tier in front: it must behave exactly as Redis alone on one replica.
    static let tiered = StoreFactory<any Cache>(name: "Redis behind an in-process tier") { body in
        try await redis.with { shared in
            try await body(
                TieredCache(
                    local: InProcessCache(capacityBytes: 1 << 20), shared: shared, localTimeToLive: .seconds(1)))
        }
    }

    static let all = [inProcess, redis, tiered]
}

@Suite struct CacheBehaviourTests {
    @Test(arguments: Caches.all)
    func storesReplacesAndDeletes(_ factory: StoreFactory<any Cache>) async throws {
        try await factory.with { cache in
            #expect(try await cache.get("missing") == nil)
            let binary = ByteBuffer(bytes: (0...255).map(UInt8.init) + Array("\r\n$-1\r\n".utf8))
            try await cache.set("answers/a/pods?limit=10", value: binary, timeToLive: nil)
            #expect(try await cache.get("answers/a/pods?limit=10") == binary, "binary values come back byte for byte")
            try await cache.set("answers/a/pods?limit=10", value: ByteBuffer(string: "v2"), timeToLive: nil)
            #expect(try await cache.get("answers/a/pods?limit=10") == ByteBuffer(string: "v2"))
            try await cache.set("empty", value: ByteBuffer(), timeToLive: nil)
            #expect(try await cache.get("empty") == ByteBuffer())
            try await cache.delete("answers/a/pods?limit=10")
            try await cache.delete("never-there")
            #expect(try await cache.get("answers/a/pods?limit=10") == nil)
            try await cache.checkHealth()
        }
    }

    @Test(arguments: Caches.all)
    func deletesEveryKeyUnderAPrefixAndNoOther(_ factory: StoreFactory<any Cache>) async throws {
        try await factory.with { cache in
            for index in 0..<2500 {  // more than one SCAN page
                try await cache.set("answers/s1/view\(index)", value: ByteBuffer(string: "x"), timeToLive: nil)
            }
            // Glob characters in the prefix are literal.
            try await cache.set("answers/s*/view", value: ByteBuffer(string: "star"), timeToLive: nil)
            try await cache.set("answers/s2/view", value: ByteBuffer(string: "kept"), timeToLive: nil)
            try await cache.set("answers/s10/view", value: ByteBuffer(string: "kept"), timeToLive: nil)
            try await cache.deleteAll(prefix: "answers/s1/")
            #expect(try await cache.get("answers/s1/view0") == nil)
            #expect(try await cache.get("answers/s1/view2499") == nil)
            #expect(try await cache.get("answers/s2/view") == ByteBuffer(string: "kept"))
            #expect(try await cache.get("answers/s10/view") == ByteBuffer(string: "kept"))
            try await cache.deleteAll(prefix: "answers/s*/")
            #expect(try await cache.get("answers/s*/view") == nil)
            #expect(try await cache.get("answers/s2/view") == ByteBuffer(string: "kept"), "'*' is not a wildcard")
        }
    }

    @Test(arguments: Caches.all)
    func entriesWithATimeToLiveExpire(_ factory: StoreFactory<any Cache>) async throws {
        try await factory.with { cache in
            try await cache.set("short", value: ByteBuffer(string: "1"), timeToLive: .milliseconds(100))
            try await cache.set("long", value: ByteBuffer(string: "2"), timeToLive: .seconds(600))
            try await poll("the short entry to expire", timeout: .seconds(10)) { try await cache.get("short") == nil }
            #expect(try await cache.get("long") == ByteBuffer(string: "2"))
        }
    }
}

@Suite struct RedisClientTests {
    @Test func concurrentCommandsArePipelinedAndMatchedToTheirReplies() async throws {
        let client = try RedisClient(try TestServers.redis())
        let prefix = "pipeline-\(UUID().uuidString)"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<500 {
                group.addTask {
                    _ = try await client.send("SET", "\(prefix):\(index)", "value-\(index)")
                    let reply = try await client.send("GET", "\(prefix):\(index)")
                    #expect(reply == .bulkString(ByteBuffer(string: "value-\(index)")))
                }
            }
            try await group.waitForAll()
        }
        _ = try await client.send(
            ["DEL"].map { ByteBuffer(string: $0) } + (0..<500).map { ByteBuffer(string: "\(prefix):\($0)") })
        await client.close()
    }

    @Test func authenticatesAndSelectsTheDatabaseOfTheURL() async throws {
        let location = try TestServers.redis()
        #expect(location.password != nil && location.database == 3, "the test server has a password and uses db 3")
        let client = try RedisClient(location)
        let key = "select-\(UUID().uuidString)"
        _ = try await client.send("SET", key, "in-3")
        var database0 = location
        database0.database = 0
        let other = try RedisClient(database0)
        #expect(try await other.send("GET", key) == .bulkString(nil), "the key is in database 3, not 0")
        _ = try await client.send("DEL", key)
        // A wrong password is refused, and the error does not repeat it.
        var wrong = location
        wrong.password = "not-the-password"
        let refused = try RedisClient(wrong)
        await #expect { _ = try await refused.send("PING") } throws: { error in
            !"\(error)".contains("not-the-password") && "\(error)".contains("AUTH")
        }
        var none = location
        none.password = nil
        await #expect(throws: RedisError.self) { _ = try await RedisClient(none).send("GET", key) }
        await client.close()
        await other.close()
    }

    /// A server that accepts connections and never answers (a hung Redis): a command gives up at its timeout, and the
    /// connection is closed so that no late reply can be taken for another command's.
    @Test(.timeLimit(.minutes(1))) func aHungServerTimesOutWithoutHangingTheCaller() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        var location = try TestServers.redis()
        location.password = nil
        location.database = 0
        location.port = silent.localAddress!.port!
        var settings = RedisClient.Settings()
        settings.commandTimeout = .milliseconds(200)
        settings.connections = 1
        let client = try RedisClient(location, settings: settings)
        await #expect { _ = try await client.send("GET", "k") } throws: { ($0 as? RedisError)?.code == .timedOut }
        await client.close()
        try await silent.close()
    }

    @Test func aDownServerFailsFastAndAServerErrorIsThrown() async throws {
        // Nothing listens on this port: connecting fails, then the backoff answers at once.
        var location = try TestServers.redis()
        location.port = 1
        var settings = RedisClient.Settings()
        settings.connections = 1
        // Long enough that the second try falls within it however slow the machine is.
        settings.initialBackoff = .seconds(60)
        let client = try RedisClient(location, settings: settings)
        await #expect(throws: (any Error).self) { _ = try await client.send("PING") }
        await #expect("within the backoff no connect is tried") { _ = try await client.send("PING") } throws: {
            ($0 as? RedisError)?.code == .backingOff
        }

        let live = try RedisClient(try TestServers.redis())
        await #expect { _ = try await live.send("NOSUCHCOMMAND") } throws: { error in
            (error as? RedisError)?.code == .serverError && (error as? RedisError)?.message.hasPrefix("ERR") == true
        }
        #expect(try await live.send("PING") == .simpleString("PONG"), "a server error leaves the connection usable")
        await live.close()
    }
}

@Suite struct RedisScriptTests {
    static let counter = RedisScript(
        """
        local value = redis.call('INCRBY', KEYS[1], ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return {value, redis.call('PTTL', KEYS[1])}
        """)

    @Test func theDigestIsTheOneTheServerComputes() async throws {
        let client = try RedisClient(try TestServers.redis())
        let loaded = try await client.send("SCRIPT", "LOAD", Self.counter.source)
        #expect(loaded == .bulkString(ByteBuffer(string: Self.counter.sha1)))
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        await client.close()
    }

    /// After `SCRIPT FLUSH` the server no longer knows the script: the call loads it and runs it once.
    @Test func runsAtomicallyAndSurvivesAFlushedScriptCache() async throws {
        let client = try RedisClient(try TestServers.redis())
        let key = "script-\(UUID().uuidString)"
        _ = try await client.send("SCRIPT", "FLUSH")
        let first = try await client.evaluate(Self.counter, keys: [key], arguments: ["5", "60000"])
        guard case .array(let values?) = first, values.count == 2, case .integer(let ttl) = values[1] else {
            Issue.record("unexpected reply \(first)")
            return
        }
        #expect(values[0] == .integer(5))
        #expect(ttl > 0 && ttl <= 60000)
        // 200 concurrent increments: each script runs alone, so the total is exact and every answer distinct.
        let answers = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    let reply = try await client.evaluate(Self.counter, keys: [key], arguments: ["1", "60000"])
                    guard case .array(let values?) = reply, case .integer(let value) = values[0] else { return -1 }
                    return value
                }
            }
            return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
        }
        #expect(answers == Set(6...205))
        await #expect {
            _ = try await client.evaluate(RedisScript("return redis.call('NOSUCH')"), keys: [], arguments: [])
        } throws: { ($0 as? RedisError) != nil }
        _ = try await client.send("DEL", key)
        await client.close()
    }
}

@Suite struct TieredCacheTests {
    /// Two replicas over one Redis: a copy kept locally by B outlives A's deletion for at most the local time to
    /// live, and what A writes later reaches B once that copy has expired.
    @Test func aReplicasLocalCopyIsBoundedByItsTimeToLive() async throws {
        try await Caches.redis.with { shared in
            let clock = ManualClock()
            let a = TieredCache(
                local: InProcessCache(capacityBytes: 1 << 20, clock: clock), shared: shared,
                localTimeToLive: .seconds(2))
            let b = TieredCache(
                local: InProcessCache(capacityBytes: 1 << 20, clock: clock), shared: shared,
                localTimeToLive: .seconds(2))
            try await a.set("answers/s/pods", value: ByteBuffer(string: "v1"), timeToLive: nil)
            #expect(try await b.get("answers/s/pods") == ByteBuffer(string: "v1"), "read through from Redis")
            try await a.deleteAll(prefix: "answers/s/")
            #expect(try await shared.get("answers/s/pods") == nil)
            #expect(try await a.get("answers/s/pods") == nil, "the deleting replica forgets at once")
            #expect(try await b.get("answers/s/pods") == ByteBuffer(string: "v1"), "B's copy, within its lifetime")
            clock.advance(by: .seconds(2))
            #expect(try await b.get("answers/s/pods") == nil, "expired locally, and gone from Redis")
            try await a.set("answers/s/pods", value: ByteBuffer(string: "v2"), timeToLive: nil)
            #expect(try await b.get("answers/s/pods") == ByteBuffer(string: "v2"))
        }
    }
}

import NIOCore
import TestSupport
import Testing

@testable import Clients

@Suite struct LRUCacheStateTests {
    private func value(_ size: Int) -> ByteBuffer { ByteBuffer(repeating: 0x61, count: size) }
    private let overhead = LRUCacheState<Int>.entryOverhead

    @Test func evictsLeastRecentlyUsedFirst() {
        var cache = LRUCacheState<Int>(capacity: 3 * (overhead + 1 + 10))
        cache.set("a", value: value(10), expiresAt: nil)
        cache.set("b", value: value(10), expiresAt: nil)
        cache.set("c", value: value(10), expiresAt: nil)
        #expect(cache.get("a", now: 0) != nil)  // a is now the most recent
        let evicted = cache.set("d", value: value(10), expiresAt: nil)
        #expect(evicted == 1)
        #expect(cache.get("b", now: 0) == nil)
        #expect(cache.get("a", now: 0) != nil && cache.get("c", now: 0) != nil && cache.get("d", now: 0) != nil)
    }

    @Test func staysWithinItsByteBound() {
        let capacity = 10_000
        var cache = LRUCacheState<Int>(capacity: capacity)
        for index in 0..<500 {
            cache.set("key-\(index)", value: value(index % 700), expiresAt: nil)
            #expect(cache.usedBytes <= capacity)
        }
        #expect(cache.count > 1)
    }

    @Test func expiresEntriesAtTheirTime() {
        var cache = LRUCacheState<Int>(capacity: 10_000)
        cache.set("k", value: value(5), expiresAt: 100)
        #expect(cache.get("k", now: 99) != nil)
        #expect(cache.get("k", now: 100) == nil)
        #expect(cache.count == 0 && cache.usedBytes == 0)
    }

    @Test func replacingAKeyCountsOnlyTheNewValue() {
        var cache = LRUCacheState<Int>(capacity: 10_000)
        cache.set("k", value: value(100), expiresAt: nil)
        cache.set("k", value: value(10), expiresAt: nil)
        #expect(cache.count == 1)
        #expect(cache.usedBytes == 1 + 10 + overhead)
        #expect(cache.get("k", now: 0)?.readableBytes == 10)
    }

    @Test func aValueLargerThanTheCacheIsNotStored() {
        var cache = LRUCacheState<Int>(capacity: 500)
        cache.set("small", value: value(10), expiresAt: nil)
        cache.set("huge", value: value(1000), expiresAt: nil)
        #expect(cache.get("huge", now: 0) == nil)
        #expect(cache.get("small", now: 0) != nil)
    }

    /// Random operations against a plain reference model: same hits, same bound.
    @Test func agreesWithAReferenceModel() {
        var generator = SeededRandom(seed: 42)
        let capacity = 4_000
        var cache = LRUCacheState<Int>(capacity: capacity)
        var reference: [(key: String, size: Int, expiresAt: Int?)] = []  // most recent last
        for step in 0..<5_000 {
            let key = "k\(generator.next() % 40)"
            switch generator.next() % 3 {
            case 0:
                let size = Int(generator.next() % 300)
                let expiresAt = generator.next() % 4 == 0 ? step + Int(generator.next() % 50) : nil
                cache.set(key, value: value(size), expiresAt: expiresAt)
                reference.removeAll { $0.key == key }
                let cost = key.utf8.count + size + overhead
                if cost <= capacity {
                    while reference.map({ $0.key.utf8.count + $0.size + overhead }).reduce(0, +) + cost > capacity {
                        reference.removeFirst()
                    }
                    reference.append((key, size, expiresAt))
                }
            case 1:
                let hit = cache.get(key, now: step)
                if let index = reference.firstIndex(where: { $0.key == key }) {
                    let entry = reference.remove(at: index)
                    if let expiresAt = entry.expiresAt, expiresAt <= step {
                        #expect(hit == nil)
                    } else {
                        #expect(hit?.readableBytes == entry.size)
                        reference.append(entry)
                    }
                } else {
                    #expect(hit == nil)
                }
            default:
                cache.delete(key)
                reference.removeAll { $0.key == key }
            }
            #expect(cache.usedBytes <= capacity)
        }
    }
}

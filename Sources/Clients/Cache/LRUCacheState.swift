import NIOCore

/// The bookkeeping of a byte-bounded LRU cache with per-entry expiry, as a plain value: no locks, no clock.
///
/// ``InProcessCache`` wraps it in a `Mutex`; tests drive it directly. Entries form a doubly linked list threaded
/// through an array (most recently used at the head), so every operation is O(1).
package struct LRUCacheState<Instant: Comparable & Sendable>: Sendable {
    private struct Node: Sendable {
        var key: String
        var value: ByteBuffer
        var expiresAt: Instant?
        var cost: Int
        var newer: Int?
        var older: Int?
    }

    /// The most bytes (keys, values and a fixed per-entry overhead) the entries may take.
    package let capacity: Int
    /// Bytes the entries take now.
    package private(set) var usedBytes = 0
    /// How many entries there are.
    package var count: Int { index.count }

    private var nodes: [Node?] = []
    private var freeSlots: [Int] = []
    private var index: [String: Int] = [:]
    private var newest: Int?
    private var oldest: Int?

    /// Bookkeeping bytes counted for every entry besides its key and value.
    package static var entryOverhead: Int { 96 }

    /// Creates an empty cache that holds at most `capacity` bytes.
    package init(capacity: Int) { self.capacity = capacity }

    /// The value under `key` if present and not expired at `now`; a hit becomes the most recently used entry.
    package mutating func get(_ key: String, now: Instant) -> ByteBuffer? {
        guard let slot = index[key], let node = nodes[slot] else { return nil }
        if let expiresAt = node.expiresAt, expiresAt <= now {
            remove(slot)
            return nil
        }
        moveToFront(slot)
        return node.value
    }

    /// Stores `value` under `key`, evicting least recently used entries to make room. A value that could never fit
    /// is not stored (and any old value under the key is dropped). Returns how many entries were evicted.
    @discardableResult
    package mutating func set(_ key: String, value: ByteBuffer, expiresAt: Instant?) -> Int {
        if let slot = index[key] { remove(slot) }
        let cost = key.utf8.count + value.readableBytes + Self.entryOverhead
        guard cost <= capacity else { return 0 }
        var evicted = 0
        while usedBytes + cost > capacity, let victim = oldest {
            remove(victim)
            evicted += 1
        }
        let node = Node(key: key, value: value, expiresAt: expiresAt, cost: cost, newer: nil, older: newest)
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            nodes[slot] = node
        } else {
            slot = nodes.count
            nodes.append(node)
        }
        if let previous = newest { nodes[previous]?.newer = slot }
        newest = slot
        if oldest == nil { oldest = slot }
        index[key] = slot
        usedBytes += cost
        return evicted
    }

    /// Removes `key` if present.
    package mutating func delete(_ key: String) {
        if let slot = index[key] { remove(slot) }
    }

    /// Removes every key starting with `prefix`; O(entries), for rare bulk invalidation.
    package mutating func deleteAll(prefix: String) {
        for (key, slot) in index where key.hasPrefix(prefix) { remove(slot) }
    }

    private mutating func moveToFront(_ slot: Int) {
        guard newest != slot, let node = nodes[slot] else { return }
        unlink(slot, node)
        nodes[slot]?.newer = nil
        nodes[slot]?.older = newest
        if let previous = newest { nodes[previous]?.newer = slot }
        newest = slot
        if oldest == nil { oldest = slot }
    }

    private mutating func remove(_ slot: Int) {
        guard let node = nodes[slot] else { return }
        unlink(slot, node)
        nodes[slot] = nil
        freeSlots.append(slot)
        index[node.key] = nil
        usedBytes -= node.cost
    }

    private mutating func unlink(_ slot: Int, _ node: Node) {
        if let newer = node.newer { nodes[newer]?.older = node.older } else { newest = node.older }
        if let older = node.older { nodes[older]?.newer = node.newer } else { oldest = node.newer }
    }
}

import AsyncHTTPClient
import Foundation
import KubinModel
import Logging
import TestSupport
import Testing

@testable import Clients

/// The implementations of ``AnalyticsStore``, each on an empty database; every behaviour test runs against all.
enum AnalyticsStores {
    static let sqlite = StoreFactory<any AnalyticsStore>(name: "SQLite") {
        let directory = try TemporaryDirectory()
        let store = try await SQLiteAnalyticsStore.open(
            path: directory.path + "/analytics.sqlite", logger: Logger(label: "test"))
        return (
            store,
            {
                try await store.close(); directory.remove()
            }
        )
    }

    /// ClickHouse: every test writes snapshots of its own (fresh ids), so tests share the server's tables.
    static let clickHouse = StoreFactory<any AnalyticsStore>(name: "ClickHouse") { body in
        let location = try TestServers.clickHouse()
        try await HTTPClient.withHTTPClient { http in
            let client = ClickHouseClient(location: location, http: http, logger: Logger(label: "clickhouse"))
            try await body(try await ClickHouseAnalyticsStore.open(client: client, logger: Logger(label: "clickhouse")))
        }
    }

    static let all = [sqlite, clickHouse]
}

@Suite struct AnalyticsStoreBehaviourTests {
    static let web = LogStreamKey(namespace: "shop", pod: "web-1", container: "app", isPrevious: false)
    static let webPrevious = LogStreamKey(namespace: "shop", pod: "web-1", container: "app", isPrevious: true)
    static let db = LogStreamKey(namespace: "data", pod: "db-0", container: "postgres", isPrevious: false)

    /// Line `number` of a log: every third line has no timestamp; the others are one second apart.
    static func line(_ number: Int, _ text: String) -> LogLine {
        LogLine(number: number, text: text, timestampMicros: number % 3 == 0 ? nil : Int64(number) * 1_000_000)
    }

    static func fill(_ store: any AnalyticsStore, _ id: SnapshotID) async throws {
        // One log in two batches, one in one, a previous log, a fetch error.
        try await store.appendLogLines((1...40).map { line($0, "GET /cart \($0) 100%_done") }, of: web, snapshot: id)
        try await store.appendLogLines((41...50).map { line($0, "POST /Checkout \($0)") }, of: web, snapshot: id)
        try await store.appendLogLines((1...5).map { line($0, "panic: boom \($0)") }, of: webPrevious, snapshot: id)
        try await store.appendLogLines((1...20).map { line($0, "checkpoint \($0)") }, of: db, snapshot: id)
        try await store.recordLogFetchError(
            "Request log error: container not found",
            of: LogStreamKey(namespace: "shop", pod: "web-1", container: "proxy", isPrevious: false), snapshot: id)
        try await store.appendEvents(
            (0..<30).map { index in
                EventRecord(
                    namespace: index % 2 == 0 ? "shop" : "data", name: "e\(index)",
                    type: index % 3 == 0 ? "Warning" : "Normal", reason: "R\(index)", message: "m\(index)",
                    count: index + 1, firstMicros: Int64(index % 10) * 1_000_000,
                    lastMicros: index == 5 ? nil : Int64(index % 10) * 2_000_000, involvedKind: "Pod",
                    involvedName: "web-1", involvedNamespace: "shop")
            }, firstSequence: 0, snapshot: id)
        try await store.flush()
    }

    /// Follows cursors with pages of `limit` and returns every item.
    static func everyPage<Item>(
        limit: Int, _ page: (IndexCursor?) async throws -> Page<Item>
    ) async throws -> [Item] {
        var items: [Item] = []
        var cursor: IndexCursor?
        repeat {
            let next = try await page(cursor)
            items += next.items
            cursor = try next.nextCursor.map { token in try #require(IndexCursor(token: token, arity: 2)) }
        } while cursor != nil
        return items
    }

    @Test(arguments: AnalyticsStores.all)
    func logLinesComeBackInStableOrderAcrossPages(_ factory: StoreFactory<any AnalyticsStore>) async throws {
        try await factory.with { store in
            let id = SnapshotID.generate(at: Date())
            try await Self.fill(store, id)
            let all = try await store.logLines(of: id, LogQuery(limit: 5000)).items
            #expect(all.count == 75)
            for size in [1, 7, 75] {
                let paged = try await Self.everyPage(limit: size) {
                    try await store.logLines(of: id, LogQuery(limit: size, after: $0))
                }
                #expect(paged == all, "pages of \(size)")
            }
            #expect(all.prefix(50).map(\.line.number) == Array(1...50), "one log's batches continue in order")
            let other = try await store.logLines(of: SnapshotID.generate(at: Date()), LogQuery())
            #expect(other.items.isEmpty, "snapshots are separate")
        }
    }

    @Test(arguments: AnalyticsStores.all)
    func filtersSearchAndTimeRanges(_ factory: StoreFactory<any AnalyticsStore>) async throws {
        try await factory.with { store in
            let id = SnapshotID.generate(at: Date())
            try await Self.fill(store, id)
            let query = { (query: LogQuery) in try await store.logLines(of: id, query).items }
            #expect(try await query(LogQuery(namespace: "data", limit: 100)).count == 20)
            #expect(try await query(LogQuery(pod: "web-1", previous: true, limit: 100)).count == 5)
            #expect(try await query(LogQuery(pod: "web-1", previous: false, limit: 100)).count == 50)
            #expect(try await query(LogQuery(container: "postgres", limit: 100)).count == 20)
            // Case-insensitive, and LIKE's wildcards are literal text.
            #expect(try await query(LogQuery(text: "checkout", limit: 100)).count == 10)
            #expect(try await query(LogQuery(text: "100%_DONE", limit: 100)).count == 40)
            #expect(try await query(LogQuery(text: "100__done", limit: 100)).isEmpty)
            #expect(try await query(LogQuery(text: "%", limit: 100)).count == 40)
            // [10 s, 20 s): lines 10...19 of each log that has them, minus the untimestamped (multiples of 3).
            let window = try await query(LogQuery(sinceMicros: 10_000_000, untilMicros: 20_000_000, limit: 100))
            #expect(
                window.allSatisfy {
                    ($0.line.timestampMicros ?? 0) >= 10_000_000 && $0.line.timestampMicros! < 20_000_000
                })
            #expect(window.count == 2 * (10 - 3))
        }
    }

    /// Log text comes back exactly, whatever it holds (the ClickHouse store writes JSON by hand for speed).
    @Test(arguments: AnalyticsStores.all)
    func logTextIsKeptExactly(_ factory: StoreFactory<any AnalyticsStore>) async throws {
        try await factory.with { store in
            let id = SnapshotID.generate(at: Date())
            let texts = [
                #"{"msg":"quoted \"value\"","path":"C:\\dir"}"#, "tab\there", "bell\u{07} esc\u{1B}[31m", "cr\rend",
                "'; DROP TABLE log_lines; --", "é ü 日本 🚀", "back\\slash\\", "\u{7F}del", "/* comment */ -- x",
            ]
            try await store.appendLogLines(
                texts.enumerated().map { LogLine(number: $0.offset + 1, text: $0.element, timestampMicros: nil) },
                of: Self.web, snapshot: id)
            let back = try await store.logLines(of: id, LogQuery(limit: 100)).items.map(\.line.text)
            #expect(back == texts)
            for text in texts {
                let found = try await store.logLines(of: id, LogQuery(text: text, limit: 100)).items
                #expect(found.map(\.line.text).contains(text), "\(text.debugDescription)")
            }
        }
    }

    /// A search text is literal, whatever it holds: a NUL matches only the lines that hold one.
    @Test(arguments: AnalyticsStores.all)
    func aSearchForANulFindsOnlyLinesWithOne(_ factory: StoreFactory<any AnalyticsStore>) async throws {
        try await factory.with { store in
            let id = SnapshotID.generate(at: Date())
            let texts = ["plain", "with \u{0} nul", "\u{0}", "nul-free too", "two\u{0}\u{0}"]
            try await store.appendLogLines(
                texts.enumerated().map { LogLine(number: $0.offset + 1, text: $0.element, timestampMicros: nil) },
                of: Self.web, snapshot: id)
            let found = try await store.logLines(of: id, LogQuery(text: "\u{0}", limit: 100)).items.map(\.line.text)
            #expect(found == ["with \u{0} nul", "\u{0}", "two\u{0}\u{0}"])
            let pair = try await store.logLines(of: id, LogQuery(text: "\u{0}\u{0}", limit: 100)).items
            #expect(pair.map(\.line.text) == ["two\u{0}\u{0}"])
        }
    }

    /// Long logs span many blocks of the time index, with times out of order and gaps without timestamps; a range
    /// query returns exactly the lines a scan would.
    @Test(arguments: AnalyticsStores.all)
    func timeRangesOverLongLogsMatchAFullScan(_ factory: StoreFactory<any AnalyticsStore>) async throws {
        try await factory.with { store in
            let id = SnapshotID.generate(at: Date())
            var lines: [LogLine] = []
            for number in 1...3000 {
                // Mostly rising, with a block that jumps back in time and stretches without timestamps.
                let micros: Int64? =
                    (1200...1500).contains(number) ? nil : Int64(number < 2000 ? number : 4000 - number) * 1_000_000
                lines.append(LogLine(number: number, text: "line \(number)", timestampMicros: micros))
            }
            for batch in lines.chunks(of: 700) {
                try await store.appendLogLines(Array(batch), of: Self.web, snapshot: id)
            }
            for (since, until) in [(0, 100), (100, 2500), (1990, 2010), (2500, 2600), (1300, 1400), (0, 100_000)] {
                let window = try await Self.everyPage(limit: 97) {
                    try await store.logLines(
                        of: id,
                        LogQuery(
                            sinceMicros: Int64(since) * 1_000_000, untilMicros: Int64(until) * 1_000_000, limit: 97,
                            after: $0))
                }
                let expected = lines.filter {
                    guard let micros = $0.timestampMicros else { return false }
                    return micros >= Int64(since) * 1_000_000 && micros < Int64(until) * 1_000_000
                }
                #expect(window.map(\.line) == expected, "[\(since), \(until))")
            }
        }
    }

    @Test(arguments: AnalyticsStores.all)
    func eventsNewestFirstWithFiltersAndCursors(_ factory: StoreFactory<any AnalyticsStore>) async throws {
        try await factory.with { store in
            let id = SnapshotID.generate(at: Date())
            try await Self.fill(store, id)
            let all = try await store.events(of: id, EventQuery(limit: 1000)).items
            #expect(all.count == 30)
            let times = all.map { $0.lastMicros ?? $0.firstMicros ?? 0 }
            #expect(times == times.sorted(by: >), "newest first, by last (else first) time")
            let paged = try await Self.everyPage(limit: 4) {
                try await store.events(of: id, EventQuery(limit: 4, after: $0))
            }
            #expect(paged == all)
            #expect(try await store.events(of: id, EventQuery(type: "Warning", limit: 100)).items.count == 10)
            #expect(try await store.events(of: id, EventQuery(namespace: "data", limit: 100)).items.count == 15)
            #expect(
                try await store.events(of: id, EventQuery(involvedKind: "Pod", involvedName: "web-1", limit: 100)).items
                    .count == 30)
            #expect(try await store.events(of: id, EventQuery(involvedName: "web-2", limit: 100)).items.isEmpty)
            let activity = try await store.namespaceActivity(of: id)
            #expect(activity["shop"] == NamespaceActivity(logLines: 55, warningEvents: 5))
            #expect(activity["data"] == NamespaceActivity(logLines: 20, warningEvents: 5))
        }
    }

    @Test(arguments: AnalyticsStores.all)
    func podStatisticsAndDeletion(_ factory: StoreFactory<any AnalyticsStore>) async throws {
        try await factory.with { store in
            let id = SnapshotID.generate(at: Date())
            let kept = SnapshotID.generate(at: Date())
            try await Self.fill(store, id)
            try await Self.fill(store, kept)
            let web = PodKey(namespace: "shop", name: "web-1")
            let stats = try await store.podLogStats(
                of: id, pods: [web, PodKey(namespace: "data", name: "db-0"), PodKey(namespace: "x", name: "none")])
            #expect(stats[web]?.lines == 55)
            #expect(stats[web]?.firstMicros == 1_000_000 && stats[web]?.lastMicros == 50_000_000)
            #expect(stats[web]?.fetchErrors == ["proxy": "Request log error: container not found"])
            #expect(stats[PodKey(namespace: "data", name: "db-0")]?.lines == 20)
            #expect(stats[PodKey(namespace: "x", name: "none")] == nil)

            try await store.deleteSnapshot(id)
            #expect(try await store.logLines(of: id, LogQuery()).items.isEmpty)
            #expect(try await store.events(of: id, EventQuery()).items.isEmpty)
            #expect(try await store.namespaceActivity(of: id).isEmpty)
            #expect(try await store.logLines(of: kept, LogQuery(limit: 5000)).items.count == 75, "others stay")
            // Re-ingesting after a delete writes the same rows again without conflicts.
            try await Self.fill(store, id)
            #expect(try await store.logLines(of: id, LogQuery(limit: 5000)).items.count == 75)
        }
    }
}

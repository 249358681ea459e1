import Foundation
import KubinModel
import KubinSupport
import Logging
import NIOCore
import Synchronization

/// The production ``AnalyticsStore``: ClickHouse over its HTTP interface, DDL that runs on 18.16 and current versions.
///
/// Every value reaches SQL through ``ClickHouseSQL/literal(_:)``. Container logs are numbered per snapshot in the
/// order they first arrive (the stable order of `logs` answers); their statistics are rows per write, summed when
/// read. Deleting a snapshot is a mutation (`ALTER TABLE ... DELETE`), which 18.16 runs in the background: the call
/// waits until the mutations are done, so a re-ingest never meets old rows.
package final class ClickHouseAnalyticsStore: AnalyticsStore {
    private let client: ClickHouseClient
    private let logger: Logger
    /// The numbers of the container logs of snapshots being written, loaded from the server when missing.
    private let streams = Mutex<[SnapshotID: [LogStreamKey: Int]]>([:])

    private init(client: ClickHouseClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Creates the tables when missing and returns the store.
    package static func open(client: ClickHouseClient, logger: Logger) async throws -> ClickHouseAnalyticsStore {
        for statement in schema { try await client.execute(statement) }
        return ClickHouseAnalyticsStore(client: client, logger: logger)
    }

    static let schema = [
        """
        CREATE TABLE IF NOT EXISTS log_streams (
            snapshot_id String, stream UInt32, namespace String, pod String, container String, previous UInt8,
            lines UInt64, first_ts Nullable(Int64), last_ts Nullable(Int64), fetch_error Nullable(String)
        ) ENGINE = MergeTree ORDER BY (snapshot_id, stream)
        """,
        """
        CREATE TABLE IF NOT EXISTS log_lines (
            snapshot_id String, stream UInt32, line UInt32, ts Nullable(Int64), text String
        ) ENGINE = MergeTree ORDER BY (snapshot_id, stream, line)
        """,
        """
        CREATE TABLE IF NOT EXISTS events (
            snapshot_id String, seq UInt32, namespace String, name String, type String, reason String,
            message String, count Int64, first_ts Nullable(Int64), last_ts Nullable(Int64), sort_ts Int64,
            involved_kind String, involved_name String, involved_namespace Nullable(String)
        ) ENGINE = MergeTree ORDER BY (snapshot_id, sort_ts, seq)
        """,
    ]

    // MARK: Ingest

    package func appendLogLines(_ batches: [LogBatch], snapshot: SnapshotID) async throws {
        let batches = batches.filter { !$0.lines.isEmpty }
        guard !batches.isEmpty else { return }
        let numbers = try await streamNumbers(for: batches.map(\.stream), snapshot: snapshot)
        var statistics: [LogStreamKey: (lines: Int, first: Int64?, last: Int64?)] = [:]
        // The bulk of ingest: JSONEachRow text written directly, not through JSONSerialization.
        var lines = ByteBuffer()
        lines.reserveCapacity(batches.reduce(0) { $0 + $1.lines.reduce(0) { $0 + $1.text.utf8.count + 96 } })
        var prefix = ByteBuffer(string: "{\"snapshot_id\":")
        JSONText.appendString(snapshot.rawValue, to: &prefix)
        prefix.writeString(",\"stream\":")
        for batch in batches {
            var entry = statistics[batch.stream] ?? (0, nil, nil)
            let stream = numbers[batch.stream]!
            for line in batch.lines {
                lines.writeImmutableBuffer(prefix)
                lines.writeString("\(stream),\"line\":\(line.number),\"ts\":")
                lines.writeString(line.timestampMicros.map(String.init) ?? "null")
                lines.writeString(",\"text\":")
                JSONText.appendString(line.text, to: &lines)
                lines.writeString("}\n")
                if let stamp = line.timestampMicros {
                    entry.first = min(entry.first ?? stamp, stamp)
                    entry.last = max(entry.last ?? stamp, stamp)
                }
            }
            entry.lines += batch.lines.count
            statistics[batch.stream] = entry
        }
        try await client.insert(into: "log_lines", jsonEachRow: lines)
        try await client.insert(
            into: "log_streams",
            rows: statistics.map { stream, figures in
                Self.streamRow(
                    snapshot, numbers[stream]!, stream, lines: figures.lines, first: figures.first,
                    last: figures.last, fetchError: nil)
            })
    }

    package func recordLogFetchError(_ message: String, of stream: LogStreamKey, snapshot: SnapshotID) async throws {
        let numbers = try await streamNumbers(for: [stream], snapshot: snapshot)
        try await client.insert(
            into: "log_streams",
            rows: [
                Self.streamRow(snapshot, numbers[stream]!, stream, lines: 0, first: nil, last: nil, fetchError: message)
            ])
    }

    package func appendEvents(_ events: [EventRecord], firstSequence: Int, snapshot: SnapshotID) async throws {
        try await client.insert(
            into: "events",
            rows: events.enumerated().map { index, event in
                [
                    "snapshot_id": snapshot.rawValue, "seq": firstSequence + index, "namespace": event.namespace,
                    "name": event.name, "type": event.type, "reason": event.reason, "message": event.message,
                    "count": event.count, "first_ts": event.firstMicros.map { $0 as Any } ?? NSNull(),
                    "last_ts": event.lastMicros.map { $0 as Any } ?? NSNull(),
                    "sort_ts": event.lastMicros ?? event.firstMicros ?? 0, "involved_kind": event.involvedKind,
                    "involved_name": event.involvedName,
                    "involved_namespace": event.involvedNamespace.map { $0 as Any } ?? NSNull(),
                ]
            })
    }

    /// Acknowledged inserts are stored; nothing more to do. The numbering cache is dropped (it is rebuilt from the
    /// server when a snapshot is written again).
    package func flush() async throws {
        streams.withLock { $0.removeAll() }
    }

    package func deleteSnapshot(_ snapshot: SnapshotID) async throws {
        streams.withLock { _ = $0.removeValue(forKey: snapshot) }
        let id = ClickHouseSQL.literal(snapshot.rawValue)
        for table in ["log_lines", "log_streams", "events"] {
            try await client.execute("ALTER TABLE \(table) DELETE WHERE snapshot_id = \(id)")
        }
        // Mutations run in the background on 18.16: wait for them, polled, within a bound.
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let pending = try await client.rows(
                "SELECT count() AS n FROM system.mutations WHERE database = currentDatabase() AND is_done = 0 "
                    + "AND table IN ('log_lines', 'log_streams', 'events')")
            if (pending.first?.int("n") ?? 0) == 0 { return }
            guard ContinuousClock.now < deadline else {
                throw ClickHouseError(
                    code: .unfinished, message: "deleting a snapshot's rows did not finish within 60 s")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: Queries

    package func logLines(of snapshot: SnapshotID, _ query: LogQuery) async throws -> Page<LogEntry> {
        let id = ClickHouseSQL.literal(snapshot.rawValue)
        var filters = ["snapshot_id = \(id)"]
        if let value = query.namespace { filters.append("namespace = \(ClickHouseSQL.literal(value))") }
        if let value = query.pod { filters.append("pod = \(ClickHouseSQL.literal(value))") }
        if let value = query.container { filters.append("container = \(ClickHouseSQL.literal(value))") }
        if let value = query.previous { filters.append("previous = \(value ? 1 : 0)") }
        var keys: [Int: LogStreamKey] = [:]
        for row in try await client.rows(
            "SELECT stream, namespace, pod, container, previous FROM log_streams "
                + "WHERE \(filters.joined(separator: " AND ")) GROUP BY stream, namespace, pod, container, previous")
        {
            guard let number = row.int("stream"), let key = Self.streamKey(row) else { continue }
            keys[number] = key
        }
        guard !keys.isEmpty else { return Page(items: [], nextCursor: nil) }
        var conditions = [
            "snapshot_id = \(id)", "stream IN (\(keys.keys.sorted().map(String.init).joined(separator: ", ")))",
        ]
        if let since = query.sinceMicros { conditions.append("ts >= \(ClickHouseSQL.literal(since))") }
        if let until = query.untilMicros { conditions.append("ts < \(ClickHouseSQL.literal(until))") }
        if let text = query.text {
            conditions.append("positionCaseInsensitiveUTF8(text, \(ClickHouseSQL.literal(text))) > 0")
        }
        if let after = query.after {
            guard let stream = after.integer(0), let line = after.integer(1) else { throw IndexQueryError.badCursor }
            conditions.append("(stream > \(stream) OR (stream = \(stream) AND line > \(line)))")
        }
        let rows = try await client.rows(
            "SELECT stream, line, ts, text FROM log_lines WHERE \(conditions.joined(separator: " AND ")) "
                + "ORDER BY stream, line LIMIT \(query.limit + 1)")
        return try Page(rows: rows, limit: query.limit) { row in
            guard let number = row.int("stream"), let key = keys[number], let line = row.int("line"),
                let text = row["text"]
            else { throw ClickHouseError(code: .malformedAnswer, message: "a log line row is unreadable") }
            return LogEntry(stream: key, line: LogLine(number: line, text: text, timestampMicros: row.int64("ts")))
        } cursor: { row, _ in
            IndexCursor([row["stream"] ?? "0", row["line"] ?? "0"]).token
        }
    }

    package func events(of snapshot: SnapshotID, _ query: EventQuery) async throws -> Page<EventRecord> {
        var conditions = ["snapshot_id = \(ClickHouseSQL.literal(snapshot.rawValue))"]
        if let value = query.namespace { conditions.append("namespace = \(ClickHouseSQL.literal(value))") }
        if let value = query.type { conditions.append("type = \(ClickHouseSQL.literal(value))") }
        if let value = query.involvedKind { conditions.append("involved_kind = \(ClickHouseSQL.literal(value))") }
        if let value = query.involvedName { conditions.append("involved_name = \(ClickHouseSQL.literal(value))") }
        if let after = query.after {
            guard let time = after.integer(0), let sequence = after.integer(1) else { throw IndexQueryError.badCursor }
            conditions.append("(sort_ts < \(time) OR (sort_ts = \(time) AND seq < \(sequence)))")
        }
        let rows = try await client.rows(
            "SELECT * FROM events WHERE \(conditions.joined(separator: " AND ")) ORDER BY sort_ts DESC, seq DESC "
                + "LIMIT \(query.limit + 1)")
        return try Page(rows: rows, limit: query.limit) { row in
            guard let namespace = row["namespace"], let name = row["name"], let type = row["type"],
                let reason = row["reason"], let message = row["message"], let count = row.int("count"),
                let kind = row["involved_kind"], let involved = row["involved_name"]
            else { throw ClickHouseError(code: .malformedAnswer, message: "an event row is unreadable") }
            return EventRecord(
                namespace: namespace, name: name, type: type, reason: reason, message: message, count: count,
                firstMicros: row.int64("first_ts"), lastMicros: row.int64("last_ts"), involvedKind: kind,
                involvedName: involved, involvedNamespace: row["involved_namespace"])
        } cursor: { row, _ in
            IndexCursor([row["sort_ts"] ?? "0", row["seq"] ?? "0"]).token
        }
    }

    package func podLogStats(of snapshot: SnapshotID, pods: [PodKey]) async throws -> [PodKey: PodLogStats] {
        guard !pods.isEmpty else { return [:] }
        let wanted = pods.map { "(\(ClickHouseSQL.literal($0.namespace)), \(ClickHouseSQL.literal($0.name)))" }
        var stats: [PodKey: PodLogStats] = [:]
        for row in try await client.rows(
            """
            SELECT namespace, pod, container, previous, sum(lines) AS lines, min(first_ts) AS first_ts,
                max(last_ts) AS last_ts, max(fetch_error) AS fetch_error
            FROM log_streams WHERE snapshot_id = \(ClickHouseSQL.literal(snapshot.rawValue))
                AND (namespace, pod) IN (\(wanted.joined(separator: ", ")))
            GROUP BY namespace, pod, container, previous
            """)
        {
            guard let key = Self.streamKey(row) else { continue }
            let pod = PodKey(namespace: key.namespace, name: key.pod)
            var entry = stats[pod, default: PodLogStats()]
            entry.lines += row.int("lines") ?? 0
            if let first = row.int64("first_ts") { entry.firstMicros = min(entry.firstMicros ?? first, first) }
            if let last = row.int64("last_ts") { entry.lastMicros = max(entry.lastMicros ?? last, last) }
            if let error = row["fetch_error"] {
                entry.fetchErrors[key.isPrevious ? "\(key.container) (previous)" : key.container] = error
            }
            stats[pod] = entry
        }
        return stats
    }

    package func namespaceActivity(of snapshot: SnapshotID) async throws -> [String: NamespaceActivity] {
        let id = ClickHouseSQL.literal(snapshot.rawValue)
        var activity: [String: NamespaceActivity] = [:]
        for row in try await client.rows(
            "SELECT namespace, sum(lines) AS n FROM log_streams WHERE snapshot_id = \(id) GROUP BY namespace")
        {
            guard let namespace = row["namespace"] else { continue }
            activity[namespace, default: NamespaceActivity()].logLines = row.int("n") ?? 0
        }
        for row in try await client.rows(
            "SELECT namespace, count() AS n FROM events WHERE snapshot_id = \(id) AND type = 'Warning' "
                + "GROUP BY namespace")
        {
            guard let namespace = row["namespace"] else { continue }
            activity[namespace, default: NamespaceActivity()].warningEvents = row.int("n") ?? 0
        }
        return activity
    }

    package func checkHealth() async throws { try await client.ping() }

    // MARK: Helpers

    /// The numbers of `keys` in `snapshot`, giving new logs the next numbers.
    private func streamNumbers(for keys: [LogStreamKey], snapshot: SnapshotID) async throws -> [LogStreamKey: Int] {
        if streams.withLock({ $0[snapshot] }) == nil {
            var known: [LogStreamKey: Int] = [:]
            for row in try await client.rows(
                "SELECT stream, namespace, pod, container, previous FROM log_streams "
                    + "WHERE snapshot_id = \(ClickHouseSQL.literal(snapshot.rawValue)) "
                    + "GROUP BY stream, namespace, pod, container, previous")
            {
                if let number = row.int("stream"), let key = Self.streamKey(row) { known[key] = number }
            }
            streams.withLock { $0[snapshot] = $0[snapshot] ?? known }
        }
        return streams.withLock { all in
            var numbers = all[snapshot] ?? [:]
            for key in keys where numbers[key] == nil { numbers[key] = numbers.count + 1 }
            all[snapshot] = numbers
            return numbers
        }
    }

    private static func streamRow(
        _ snapshot: SnapshotID, _ number: Int, _ key: LogStreamKey, lines: Int, first: Int64?, last: Int64?,
        fetchError: String?
    ) -> [String: Any] {
        [
            "snapshot_id": snapshot.rawValue, "stream": number, "namespace": key.namespace, "pod": key.pod,
            "container": key.container, "previous": key.isPrevious ? 1 : 0, "lines": lines,
            "first_ts": first.map { $0 as Any } ?? NSNull(), "last_ts": last.map { $0 as Any } ?? NSNull(),
            "fetch_error": fetchError.map { $0 as Any } ?? NSNull(),
        ]
    }

    private static func streamKey(_ row: ClickHouseRow) -> LogStreamKey? {
        guard let namespace = row["namespace"], let pod = row["pod"], let container = row["container"],
            let previous = row.int("previous")
        else { return nil }
        return LogStreamKey(namespace: namespace, pod: pod, container: container, isPrevious: previous != 0)
    }
}

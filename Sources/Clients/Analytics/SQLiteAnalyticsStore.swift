import KubinModel
import Logging
import SQLiteNIO

/// The embedded ``AnalyticsStore``: a SQLite file of its own (by default `<data dir>/analytics.sqlite`).
///
/// Each container log is a `log_streams` row holding its statistics (updated as lines arrive, so the pods table never
/// scans lines); lines are keyed by (log, line number), which is also the stable order of `logs` answers. Time ranges
/// use a block range index (as ClickHouse's min-max skip indexes do): for every block of up to 256 consecutive lines
/// of a log, the earliest and latest timestamp. A log's lines are nearly in time order, so a range query reads only
/// the blocks that overlap it, while ingest writes one index row per block instead of one per line. Appends are
/// multi-row inserts, one transaction per call. Commits are synced at ``flush()`` only (`synchronous=NORMAL`): ingest
/// flushes before it marks a snapshot ready, and a crash before that re-ingests the snapshot from its archive.
/// Text search is SQLite's `LIKE`, which ignores case for ASCII letters only.
package final class SQLiteAnalyticsStore: AnalyticsStore {
    private let database: SQLiteDatabase

    /// Lines per entry of the time index.
    static let linesPerBlock = 256

    /// SQLite's default bound on `?` parameters in one statement (32766), with room to spare.
    private static let maxBindsPerStatement = 30_000

    /// The schema, oldest first. Append new versions; never edit a released one.
    package static let migrations: [Migration] = [
        .init(
            version: 1, name: "log streams, log lines and events",
            statements: [
                """
                CREATE TABLE log_streams (
                    id INTEGER PRIMARY KEY,
                    snapshot_id TEXT NOT NULL,
                    namespace TEXT NOT NULL,
                    pod TEXT NOT NULL,
                    container TEXT NOT NULL,
                    previous INTEGER NOT NULL,
                    lines INTEGER NOT NULL DEFAULT 0,
                    first_ts INTEGER,
                    last_ts INTEGER,
                    fetch_error TEXT,
                    UNIQUE (snapshot_id, namespace, pod, container, previous)
                ) STRICT
                """,
                """
                CREATE TABLE log_lines (
                    stream_id INTEGER NOT NULL,
                    line INTEGER NOT NULL,
                    ts INTEGER,
                    text TEXT NOT NULL,
                    PRIMARY KEY (stream_id, line)
                ) STRICT, WITHOUT ROWID
                """,
                // The time index: per block of up to 256 consecutive lines of a log, the range of its timestamps.
                """
                CREATE TABLE log_blocks (
                    stream_id INTEGER NOT NULL,
                    first_line INTEGER NOT NULL,
                    last_line INTEGER NOT NULL,
                    min_ts INTEGER NOT NULL,
                    max_ts INTEGER NOT NULL,
                    PRIMARY KEY (stream_id, first_line)
                ) STRICT, WITHOUT ROWID
                """,
                """
                CREATE TABLE events (
                    snapshot_id TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    type TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    message TEXT NOT NULL,
                    count INTEGER NOT NULL,
                    first_ts INTEGER,
                    last_ts INTEGER,
                    sort_ts INTEGER NOT NULL,
                    involved_kind TEXT NOT NULL,
                    involved_name TEXT NOT NULL,
                    involved_namespace TEXT,
                    PRIMARY KEY (snapshot_id, seq)
                ) STRICT, WITHOUT ROWID
                """,
                "CREATE INDEX events_by_time ON events (snapshot_id, sort_ts DESC, seq DESC)",
                "CREATE INDEX events_by_type ON events (snapshot_id, type, sort_ts DESC, seq DESC)",
                "CREATE INDEX events_by_namespace ON events (snapshot_id, namespace, sort_ts DESC, seq DESC)",
            ])
    ]

    private init(database: SQLiteDatabase) { self.database = database }

    /// Opens (creating and migrating when needed) the database file at `path`.
    package static func open(path: String, logger: Logger) async throws -> SQLiteAnalyticsStore {
        SQLiteAnalyticsStore(
            database: try await SQLiteDatabase.open(
                path: path, migrations: migrations, durability: .normal, logger: logger))
    }

    /// Closes the database. No call may follow.
    package func close() async throws { try await database.close() }

    // MARK: Ingest

    package func appendLogLines(_ batches: [LogBatch], snapshot: SnapshotID) async throws {
        // One row per log for its statistics, however many of its batches this call carries.
        var streams: [LogStreamKey: (lines: Int, first: Int64?, last: Int64?)] = [:]
        for batch in batches where !batch.lines.isEmpty {
            var entry = streams[batch.stream] ?? (0, nil, nil)
            entry.lines += batch.lines.count
            for line in batch.lines {
                guard let stamp = line.timestampMicros else { continue }
                entry.first = min(entry.first ?? stamp, stamp)
                entry.last = max(entry.last ?? stamp, stamp)
            }
            streams[batch.stream] = entry
        }
        guard !streams.isEmpty else { return }
        try await database.transaction { transaction in
            var ids: [LogStreamKey: Int] = [:]
            for chunk in Array(streams).chunks(of: Self.maxBindsPerStatement / 8) {
                var binds: [SQLiteData] = []
                binds.reserveCapacity(chunk.count * 8)
                for (stream, figures) in chunk {
                    binds += [
                        .text(snapshot.rawValue), .text(stream.namespace), .text(stream.pod), .text(stream.container),
                        .integer(stream.isPrevious ? 1 : 0), .integer(figures.lines),
                        figures.first.map(Self.integer) ?? .null, figures.last.map(Self.integer) ?? .null,
                    ]
                }
                for row in try await transaction.query(
                    Self.upsertStreams + Self.placeholders(rows: chunk.count, columns: 8) + Self.upsertStreamsTail,
                    binds)
                {
                    guard let id = row.column("id")?.integer, let stream = Self.streamKey(row) else {
                        throw SQLiteDatabaseError("inserting a log stream returned no id")
                    }
                    ids[stream] = id
                }
            }
            var rows: [SQLiteData] = []
            let rowsPerStatement = Self.maxBindsPerStatement / 4
            rows.reserveCapacity(4 * min(rowsPerStatement, batches.reduce(0) { $0 + $1.lines.count }))
            for batch in batches {
                guard let id = ids[batch.stream] else { continue }
                for line in batch.lines {
                    rows += [
                        .integer(id), .integer(line.number), line.timestampMicros.map(Self.integer) ?? .null,
                        .text(line.text),
                    ]
                    if rows.count == rowsPerStatement * 4 { try await Self.insertLines(&rows, in: transaction) }
                }
            }
            if !rows.isEmpty { try await Self.insertLines(&rows, in: transaction) }
            var blocks: [SQLiteData] = []
            for batch in batches {
                guard let id = ids[batch.stream] else { continue }
                for block in batch.lines.chunks(of: Self.linesPerBlock) {
                    let stamps = block.compactMap(\.timestampMicros)
                    guard let earliest = stamps.min(), let latest = stamps.max() else { continue }
                    blocks += [
                        .integer(id), .integer(block.first!.number), .integer(block.last!.number),
                        Self.integer(earliest), Self.integer(latest),
                    ]
                }
            }
            for chunk in blocks.chunks(of: Self.maxBindsPerStatement / 5 * 5) {
                _ = try await transaction.query(
                    "INSERT INTO log_blocks (stream_id, first_line, last_line, min_ts, max_ts) VALUES "
                        + Self.placeholders(rows: chunk.count / 5, columns: 5), Array(chunk))
            }
        }
    }

    private static func insertLines(
        _ binds: inout [SQLiteData], in transaction: SQLiteDatabase.Transaction
    ) async throws {
        _ = try await transaction.query(
            "INSERT INTO log_lines (stream_id, line, ts, text) VALUES "
                + placeholders(rows: binds.count / 4, columns: 4),
            binds)
        binds.removeAll(keepingCapacity: true)
    }

    private static let upsertStreams =
        "INSERT INTO log_streams (snapshot_id, namespace, pod, container, previous, lines, first_ts, last_ts) VALUES "
    private static let upsertStreamsTail = """

        ON CONFLICT (snapshot_id, namespace, pod, container, previous) DO UPDATE SET
            lines = lines + excluded.lines,
            first_ts = coalesce(min(first_ts, excluded.first_ts), first_ts, excluded.first_ts),
            last_ts = coalesce(max(last_ts, excluded.last_ts), last_ts, excluded.last_ts)
        RETURNING id, namespace, pod, container, previous
        """

    private static func streamKey(_ row: SQLiteRow) -> LogStreamKey? {
        guard let namespace = row.column("namespace")?.string, let pod = row.column("pod")?.string,
            let container = row.column("container")?.string, let previous = row.column("previous")?.integer
        else { return nil }
        return LogStreamKey(namespace: namespace, pod: pod, container: container, isPrevious: previous != 0)
    }

    package func recordLogFetchError(_ message: String, of stream: LogStreamKey, snapshot: SnapshotID) async throws {
        _ = try await database.query(
            """
            INSERT INTO log_streams (snapshot_id, namespace, pod, container, previous, fetch_error)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (snapshot_id, namespace, pod, container, previous) DO UPDATE SET fetch_error = excluded.fetch_error
            """,
            [
                .text(snapshot.rawValue), .text(stream.namespace), .text(stream.pod), .text(stream.container),
                .integer(stream.isPrevious ? 1 : 0), .text(message),
            ])
    }

    package func appendEvents(_ events: [EventRecord], firstSequence: Int, snapshot: SnapshotID) async throws {
        guard !events.isEmpty else { return }
        let columns = 14
        try await database.transaction { transaction in
            var sequence = firstSequence
            for chunk in events.chunks(of: Self.maxBindsPerStatement / columns) {
                var binds: [SQLiteData] = []
                binds.reserveCapacity(chunk.count * columns)
                for event in chunk {
                    binds += [
                        .text(snapshot.rawValue), .integer(sequence), .text(event.namespace), .text(event.name),
                        .text(event.type), .text(event.reason), .text(event.message), .integer(event.count),
                        event.firstMicros.map(Self.integer) ?? .null, event.lastMicros.map(Self.integer) ?? .null,
                        .integer(Int(event.lastMicros ?? event.firstMicros ?? 0)), .text(event.involvedKind),
                        .text(event.involvedName), event.involvedNamespace.map(SQLiteData.text) ?? .null,
                    ]
                    sequence += 1
                }
                _ = try await transaction.query(
                    """
                    INSERT INTO events (snapshot_id, seq, namespace, name, type, reason, message, count, first_ts,
                                        last_ts, sort_ts, involved_kind, involved_name, involved_namespace)
                    VALUES \(Self.placeholders(rows: chunk.count, columns: columns))
                    """, binds)
            }
        }
    }

    package func flush() async throws { try await database.checkpoint() }

    package func deleteSnapshot(_ snapshot: SnapshotID) async throws {
        try await database.transaction { transaction in
            let id: [SQLiteData] = [.text(snapshot.rawValue)]
            _ = try await transaction.query(
                "DELETE FROM log_lines WHERE stream_id IN (SELECT id FROM log_streams WHERE snapshot_id = ?)", id)
            _ = try await transaction.query(
                "DELETE FROM log_blocks WHERE stream_id IN (SELECT id FROM log_streams WHERE snapshot_id = ?)", id)
            _ = try await transaction.query("DELETE FROM log_streams WHERE snapshot_id = ?", id)
            _ = try await transaction.query("DELETE FROM events WHERE snapshot_id = ?", id)
        }
    }

    // MARK: Queries

    package func logLines(of snapshot: SnapshotID, _ query: LogQuery) async throws -> Page<LogEntry> {
        var filter = SQLFilter("s.snapshot_id = ?", [.text(snapshot.rawValue)])
        filter.add("s.namespace = ?", query.namespace.map(SQLiteData.text))
        filter.add("s.pod = ?", query.pod.map(SQLiteData.text))
        filter.add("s.container = ?", query.container.map(SQLiteData.text))
        filter.add("s.previous = ?", query.previous.map { .integer($0 ? 1 : 0) })
        var tables = "log_streams s JOIN log_lines l ON l.stream_id = s.id"
        if query.sinceMicros != nil || query.untilMicros != nil {
            tables = """
                log_streams s JOIN log_blocks b ON b.stream_id = s.id
                JOIN log_lines l ON l.stream_id = b.stream_id AND l.line BETWEEN b.first_line AND b.last_line
                """
            filter.add("b.max_ts >= ?", query.sinceMicros.map(Self.integer))
            filter.add("b.min_ts < ?", query.untilMicros.map(Self.integer))
        }
        filter.add("l.ts >= ?", query.sinceMicros.map(Self.integer))
        filter.add("l.ts < ?", query.untilMicros.map(Self.integer))
        filter.add("l.text LIKE ? ESCAPE '\\'", query.text.map { .text("%" + Self.escapeLike($0) + "%") })
        if let after = query.after {
            guard let stream = after.integer(0), let line = after.integer(1) else { throw IndexQueryError.badCursor }
            filter.add("(l.stream_id, l.line) > (?, ?)", [.integer(Int(stream)), .integer(Int(line))])
        }
        let rows = try await database.query(
            """
            SELECT s.id, s.namespace, s.pod, s.container, s.previous, l.line, l.ts, l.text
            FROM \(tables)
            WHERE \(filter.sql) ORDER BY l.stream_id, l.line LIMIT ?
            """, filter.binds + [.integer(query.limit + 1)])
        return try Page(rows: rows, limit: query.limit) { row in
            guard let namespace = row.column("namespace")?.string, let pod = row.column("pod")?.string,
                let container = row.column("container")?.string, let previous = row.column("previous")?.integer,
                let number = row.column("line")?.integer, let text = row.column("text")?.string
            else { throw SQLiteDatabaseError("a log line row is unreadable") }
            return LogEntry(
                stream: LogStreamKey(namespace: namespace, pod: pod, container: container, isPrevious: previous != 0),
                line: LogLine(number: number, text: text, timestampMicros: row.column("ts")?.integer.map(Int64.init)))
        } cursor: { row, _ in
            IndexCursor([row.column("id")?.integer, row.column("line")?.integer].map { "\($0 ?? 0)" }).token
        }
    }

    package func events(of snapshot: SnapshotID, _ query: EventQuery) async throws -> Page<EventRecord> {
        var filter = SQLFilter("snapshot_id = ?", [.text(snapshot.rawValue)])
        filter.add("namespace = ?", query.namespace.map(SQLiteData.text))
        filter.add("type = ?", query.type.map(SQLiteData.text))
        filter.add("involved_kind = ?", query.involvedKind.map(SQLiteData.text))
        filter.add("involved_name = ?", query.involvedName.map(SQLiteData.text))
        if let after = query.after {
            guard let time = after.integer(0), let sequence = after.integer(1) else { throw IndexQueryError.badCursor }
            filter.add("(sort_ts, seq) < (?, ?)", [.integer(Int(time)), .integer(Int(sequence))])
        }
        let rows = try await database.query(
            """
            SELECT seq, sort_ts, namespace, name, type, reason, message, count, first_ts, last_ts, involved_kind,
                   involved_name, involved_namespace
            FROM events WHERE \(filter.sql) ORDER BY sort_ts DESC, seq DESC LIMIT ?
            """, filter.binds + [.integer(query.limit + 1)])
        return try Page(rows: rows, limit: query.limit) { row in
            guard let namespace = row.column("namespace")?.string, let name = row.column("name")?.string,
                let type = row.column("type")?.string, let reason = row.column("reason")?.string,
                let message = row.column("message")?.string, let count = row.column("count")?.integer,
                let kind = row.column("involved_kind")?.string, let involved = row.column("involved_name")?.string
            else { throw SQLiteDatabaseError("an event row is unreadable") }
            return EventRecord(
                namespace: namespace, name: name, type: type, reason: reason, message: message, count: count,
                firstMicros: row.column("first_ts")?.integer.map(Int64.init),
                lastMicros: row.column("last_ts")?.integer.map(Int64.init), involvedKind: kind,
                involvedName: involved, involvedNamespace: row.column("involved_namespace")?.string)
        } cursor: { row, _ in
            IndexCursor([row.column("sort_ts")?.integer, row.column("seq")?.integer].map { "\($0 ?? 0)" }).token
        }
    }

    package func podLogStats(of snapshot: SnapshotID, pods: [PodKey]) async throws -> [PodKey: PodLogStats] {
        var stats: [PodKey: PodLogStats] = [:]
        for chunk in pods.chunks(of: Self.maxBindsPerStatement / 2) {
            let rows = try await database.query(
                """
                SELECT namespace, pod, container, previous, lines, first_ts, last_ts, fetch_error FROM log_streams
                WHERE snapshot_id = ? AND (namespace, pod) IN (VALUES \(Self.placeholders(rows: chunk.count, columns: 2)))
                """, [.text(snapshot.rawValue)] + chunk.flatMap { [.text($0.namespace), .text($0.name)] })
            for row in rows {
                guard let namespace = row.column("namespace")?.string, let pod = row.column("pod")?.string,
                    let container = row.column("container")?.string, let lines = row.column("lines")?.integer
                else { throw SQLiteDatabaseError("a log stream row is unreadable") }
                var entry = stats[PodKey(namespace: namespace, name: pod), default: PodLogStats()]
                entry.lines += lines
                entry.firstMicros = Self.earliest(entry.firstMicros, row.column("first_ts")?.integer.map(Int64.init))
                entry.lastMicros = Self.latest(entry.lastMicros, row.column("last_ts")?.integer.map(Int64.init))
                if let error = row.column("fetch_error")?.string {
                    let isPrevious = row.column("previous")?.integer == 1
                    entry.fetchErrors[isPrevious ? "\(container) (previous)" : container] = error
                }
                stats[PodKey(namespace: namespace, name: pod)] = entry
            }
        }
        return stats
    }

    package func namespaceActivity(of snapshot: SnapshotID) async throws -> [String: NamespaceActivity] {
        let id: [SQLiteData] = [.text(snapshot.rawValue)]
        var activity: [String: NamespaceActivity] = [:]
        for row in try await database.query(
            "SELECT namespace, sum(lines) AS n FROM log_streams WHERE snapshot_id = ? GROUP BY namespace", id)
        {
            guard let namespace = row.column("namespace")?.string else { continue }
            activity[namespace, default: NamespaceActivity()].logLines = row.column("n")?.integer ?? 0
        }
        for row in try await database.query(
            "SELECT namespace, count(*) AS n FROM events WHERE snapshot_id = ? AND type = 'Warning' GROUP BY namespace",
            id)
        {
            guard let namespace = row.column("namespace")?.string else { continue }
            activity[namespace, default: NamespaceActivity()].warningEvents = row.column("n")?.integer ?? 0
        }
        return activity
    }

    package func checkHealth() async throws {
        _ = try await database.query("SELECT 1")
    }

    // MARK: Helpers

    private static func integer(_ value: Int64) -> SQLiteData { .integer(Int(value)) }

    /// `(?, ?), (?, ?)` for `rows` rows of `columns` columns.
    static func placeholders(rows: Int, columns: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        return Array(repeating: row, count: rows).joined(separator: ", ")
    }

    /// `text` with `LIKE`'s wildcards (and the escape character) escaped by `\`.
    static func escapeLike(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    private static func earliest(_ a: Int64?, _ b: Int64?) -> Int64? { [a, b].compactMap { $0 }.min() }
    private static func latest(_ a: Int64?, _ b: Int64?) -> Int64? { [a, b].compactMap { $0 }.max() }
}

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
/// Text search is literal and ignores case for ASCII letters only (SQLite's `instr` over `lower`).
package final class SQLiteAnalyticsStore: AnalyticsStore {
    let database: SQLiteDatabase

    /// Lines per entry of the time index.
    static let linesPerBlock = 256

    /// SQLite's default bound on `?` parameters in one statement (32766), with room to spare.
    static let maxBindsPerStatement = 30_000

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
                    Self.upsertStreams + SQLiteDatabase.placeholders(rows: chunk.count, columns: 8)
                        + Self.upsertStreamsTail,
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
                        + SQLiteDatabase.placeholders(rows: chunk.count / 5, columns: 5), Array(chunk))
            }
        }
    }

    private static func insertLines(
        _ binds: inout [SQLiteData], in transaction: SQLiteDatabase.Transaction
    ) async throws {
        _ = try await transaction.query(
            "INSERT INTO log_lines (stream_id, line, ts, text) VALUES "
                + SQLiteDatabase.placeholders(rows: binds.count / 4, columns: 4),
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

    static func streamKey(_ row: SQLiteRow) -> LogStreamKey? {
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
                    VALUES \(SQLiteDatabase.placeholders(rows: chunk.count, columns: columns))
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

    package func checkHealth() async throws {
        _ = try await database.query("SELECT 1")
    }

    // MARK: Helpers

    static func integer(_ value: Int64) -> SQLiteData { .integer(Int(value)) }

    /// `(?, ?), (?, ?)` for `rows` rows of `columns` columns.
    /// A free-text column selected `CAST(... AS BLOB)`: sqlite-nio reads TEXT as a C string, which would end it at
    /// its first NUL; its bytes are the whole UTF-8 text.
    static func wholeText(_ row: SQLiteRow, _ column: String) -> String? {
        switch row.column(column) {
        case .blob(let bytes)?: String(buffer: bytes)
        case .text(let text)?: text
        default: nil
        }
    }

    static func earliest(_ a: Int64?, _ b: Int64?) -> Int64? { [a, b].compactMap { $0 }.min() }
    static func latest(_ a: Int64?, _ b: Int64?) -> Int64? { [a, b].compactMap { $0 }.max() }
}

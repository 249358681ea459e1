import KubinModel
import Logging
import SQLiteNIO

/// The answers of the internal API, read from the blocks and events ingest wrote.
extension SQLiteAnalyticsStore {

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
        // instr compares bytes over the whole length, so every character is literal (a NUL too, which LIKE takes
        // for the end of its pattern); lower() folds ASCII letters only, as the search promises.
        filter.add("instr(lower(l.text), lower(?)) > 0", query.text.map(SQLiteData.text))
        if let after = query.after {
            guard let stream = after.integer(0), let line = after.integer(1) else { throw IndexQueryError.badCursor }
            filter.add("(l.stream_id, l.line) > (?, ?)", [.integer(Int(stream)), .integer(Int(line))])
        }
        let rows = try await database.query(
            """
            SELECT s.id, s.namespace, s.pod, s.container, s.previous, l.line, l.ts, CAST(l.text AS BLOB) AS text
            FROM \(tables)
            WHERE \(filter.sql) ORDER BY l.stream_id, l.line LIMIT ?
            """, filter.binds + [.integer(query.limit + 1)])
        return try Page(rows: rows, limit: query.limit) { row in
            guard let namespace = row.column("namespace")?.string, let pod = row.column("pod")?.string,
                let container = row.column("container")?.string, let previous = row.column("previous")?.integer,
                let number = row.column("line")?.integer, let text = Self.wholeText(row, "text")
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
            SELECT seq, sort_ts, namespace, name, type, reason, CAST(message AS BLOB) AS message, count, first_ts, last_ts, involved_kind,
                   involved_name, involved_namespace
            FROM events WHERE \(filter.sql) ORDER BY sort_ts DESC, seq DESC LIMIT ?
            """, filter.binds + [.integer(query.limit + 1)])
        return try Page(rows: rows, limit: query.limit) { row in
            guard let namespace = row.column("namespace")?.string, let name = row.column("name")?.string,
                let type = row.column("type")?.string, let reason = row.column("reason")?.string,
                let message = Self.wholeText(row, "message"), let count = row.column("count")?.integer,
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
                WHERE snapshot_id = ? AND (namespace, pod) IN (VALUES \(SQLiteDatabase.placeholders(rows: chunk.count, columns: 2)))
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
}

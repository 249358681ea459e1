import KubinModel

/// Stores and searches the log lines and events of ingested snapshots.
///
/// Implementations: ``SQLiteAnalyticsStore`` (the embedded default); ClickHouse comes later. Both pass one behaviour
/// suite. Writes come from one ingest at a time per snapshot; a snapshot is read only once it is `ready`, so readers
/// never see a half-written snapshot.
package protocol AnalyticsStore: Sendable {
    // MARK: Ingest

    /// Appends lines of any number of container logs in one write. A log's lines arrive in order over any number of
    /// batches and calls; line numbers are unique within a log.
    func appendLogLines(_ batches: [LogBatch], snapshot: SnapshotID) async throws

    /// Records that a container's log could not be fetched when the snapshot was taken.
    func recordLogFetchError(_ message: String, of stream: LogStreamKey, snapshot: SnapshotID) async throws

    /// Appends events, numbered from `firstSequence` in the order given (the tie-break of equal times).
    func appendEvents(_ events: [EventRecord], firstSequence: Int, snapshot: SnapshotID) async throws

    /// Makes everything appended so far durable.
    func flush() async throws

    /// Removes everything stored for `snapshot`: before a re-ingest, after a failed one, and on delete.
    func deleteSnapshot(_ snapshot: SnapshotID) async throws

    // MARK: Queries

    /// One page of log lines, in the order of ``LogQuery``.
    func logLines(of snapshot: SnapshotID, _ query: LogQuery) async throws -> Page<LogEntry>

    /// One page of events, newest first.
    func events(of snapshot: SnapshotID, _ query: EventQuery) async throws -> Page<EventRecord>

    /// Log statistics of the given pods (namespace, name); pods without logs are absent.
    func podLogStats(of snapshot: SnapshotID, pods: [PodKey]) async throws -> [PodKey: PodLogStats]

    /// Log lines and Warning events per namespace; namespaces with neither are absent.
    func namespaceActivity(of snapshot: SnapshotID) async throws -> [String: NamespaceActivity]

    /// Throws when the store cannot serve requests; used by `/readyz`.
    func checkHealth() async throws
}

extension AnalyticsStore {
    /// Appends lines of one container log.
    package func appendLogLines(_ lines: [LogLine], of stream: LogStreamKey, snapshot: SnapshotID) async throws {
        try await appendLogLines([LogBatch(stream: stream, lines: lines)], snapshot: snapshot)
    }
}

/// A pod's identity within a snapshot.
package struct PodKey: Sendable, Hashable {
    package var namespace: String
    package var name: String

    package init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }
}

/// Why an index query was refused.
package enum IndexQueryError: Error, Sendable {
    /// The cursor was not made by this listing.
    case badCursor
}

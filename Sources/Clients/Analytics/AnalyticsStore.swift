/// Stores and searches log lines and events of ingested snapshots.
///
/// The ingest issue adds its operations and the embedded SQLite implementation; ClickHouse follows. Until then no
/// implementation exists and the gateway configures none, so `/readyz` has nothing to check for it.
package protocol AnalyticsStore: Sendable {
    /// Throws when the store cannot serve requests; used by `/readyz`.
    func checkHealth() async throws
}

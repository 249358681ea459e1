import Foundation
import KubinModel
import NIOCore

/// One List document of a snapshot, with each indexable item and its original bytes.
package struct ParsedList: Sendable {
    /// An item: what the index keeps, and the manifest as it was in the archive.
    package struct Item: Sendable {
        /// The extracted records.
        package var extracted: ObjectExtractor.Extracted
        /// The item's original JSON.
        package var raw: ByteBuffer
    }

    /// Where the document came from (the archive path, or `stdout` with its position).
    package var source: String
    /// The namespace the file belongs to, for files of one namespace.
    package var namespace: String?
    /// The items that could be indexed.
    package var items: [Item]
    /// Items without a name or a kind, skipped.
    package var skippedItems: Int
}

/// Receives what ``SnapshotReader`` finds, in archive order. The ingest implements it: the index, the manifests in
/// storage, the log lines in analytics.
package protocol SnapshotSink {
    /// A List document was read.
    mutating func list(_ list: ParsedList) async throws
    /// Lines of one container log, in order, in batches.
    mutating func logLines(_ lines: [LogLine], of stream: LogStreamKey) async throws
    /// A container's log could not be fetched when the snapshot was taken (a `Request log error: ...` block).
    mutating func logFetchError(_ message: String, of stream: LogStreamKey) async throws
    /// How far the reader has come: compressed bytes read and archive entries seen.
    mutating func progress(bytesRead: Int64, entriesRead: Int) async throws
}

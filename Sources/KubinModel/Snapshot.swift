import Foundation

/// Where a snapshot is in its life: stored on upload, then indexed (`processing`), then `ready` or `failed`.
package enum SnapshotStatus: String, Sendable, CaseIterable, Codable {
    case stored
    case processing
    case ready
    case failed
}

/// The container format of an uploaded archive, detected from its first bytes.
package enum SnapshotFormat: String, Sendable, CaseIterable, Codable {
    /// gzip: a `.tar.gz` of a dump directory or a support bundle (or a gzipped stdout dump).
    case gzip
    /// A zip archive of a dump directory.
    case zip
    /// The stdout form of `kubectl cluster-info dump`: concatenated JSON documents and log blocks.
    case json

    /// The media type the archive is served with.
    package var mediaType: String {
        switch self {
        case .gzip: "application/gzip"
        case .zip: "application/zip"
        // The stdout form is concatenated JSON documents and log text, not one JSON value.
        case .json: "text/plain; charset=utf-8"
        }
    }

    /// The file name extension used in `Content-Disposition`.
    package var fileExtension: String {
        switch self {
        case .gzip: "tar.gz"
        case .zip: "zip"
        case .json: "json"
        }
    }
}

/// One uploaded cluster snapshot: the resource every `/api/v1/snapshots` answer is made of.
package struct Snapshot: Sendable, Equatable {
    /// The snapshot's id.
    package var id: SnapshotID
    /// The cluster the snapshot was taken from.
    package var cluster: ClusterName
    /// The tenant of whoever uploaded it: only callers of that tenant see it.
    package var tenant: TenantID
    /// Where the snapshot is in its life.
    package var status: SnapshotStatus
    /// The archive's container format.
    package var format: SnapshotFormat
    /// The archive's size in bytes.
    package var sizeBytes: Int64
    /// The archive's SHA-256, lowercase hex.
    package var sha256: String
    /// When the upload was accepted.
    package var createdAt: Date
    /// When the status last changed.
    package var updatedAt: Date
    /// Why ingest failed, in words a person understands; nil unless `status` is `failed`.
    package var failureReason: String?
    /// How far ingest has come; nil until a worker starts on it.
    package var progress: IngestProgress?
    /// What the index holds; nil unless `status` is `ready`.
    package var counts: SnapshotCounts?

    package init(
        id: SnapshotID, cluster: ClusterName, status: SnapshotStatus, format: SnapshotFormat, sizeBytes: Int64,
        sha256: String, createdAt: Date, updatedAt: Date, failureReason: String? = nil,
        progress: IngestProgress? = nil, counts: SnapshotCounts? = nil, tenant: TenantID = .legacy
    ) {
        self.id = id
        self.cluster = cluster
        self.tenant = tenant
        self.status = status
        self.format = format
        self.sizeBytes = sizeBytes
        self.sha256 = sha256
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.failureReason = failureReason
        self.progress = progress
        self.counts = counts
    }
}

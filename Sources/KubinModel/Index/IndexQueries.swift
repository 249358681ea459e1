/// What a `resources` listing asks for. Items are ordered by kind, namespace, name.
package struct ResourceQuery: Sendable, Equatable {
    /// Only objects of this namespace.
    package var namespace: String?
    /// Only objects of this kind.
    package var kind: String?
    /// Only objects whose name starts with this.
    package var namePrefix: String?
    /// Only objects whose labels match.
    package var selector: LabelSelector?
    /// Page size.
    package var limit: Int
    /// Continue after this item (kind, namespace, name).
    package var after: IndexCursor?

    package init(
        namespace: String? = nil, kind: String? = nil, namePrefix: String? = nil, selector: LabelSelector? = nil,
        limit: Int = 100, after: IndexCursor? = nil
    ) {
        self.namespace = namespace
        self.kind = kind
        self.namePrefix = namePrefix
        self.selector = selector
        self.limit = limit
        self.after = after
    }
}

/// What a `pods` listing asks for. Items are ordered by namespace, name.
package struct PodQuery: Sendable, Equatable {
    /// Only pods of this namespace.
    package var namespace: String?
    /// Only pods in this phase.
    package var phase: String?
    /// Only pods on this node.
    package var node: String?
    /// Only pods whose labels match.
    package var selector: LabelSelector?
    /// Page size.
    package var limit: Int
    /// Continue after this item (namespace, name).
    package var after: IndexCursor?

    package init(
        namespace: String? = nil, phase: String? = nil, node: String? = nil, selector: LabelSelector? = nil,
        limit: Int = 100, after: IndexCursor? = nil
    ) {
        self.namespace = namespace
        self.phase = phase
        self.node = node
        self.selector = selector
        self.limit = limit
        self.after = after
    }
}

/// What a `logs` listing asks for. Lines are ordered by container log (in archive order), then line number.
package struct LogQuery: Sendable, Equatable {
    /// The most lines on one page.
    package static let maxLimit = 5000

    /// Only this namespace.
    package var namespace: String?
    /// Only this pod.
    package var pod: String?
    /// Only this container.
    package var container: String?
    /// Only previous (true) or current (false) logs.
    package var previous: Bool?
    /// Only lines containing this text, ignoring ASCII case.
    package var text: String?
    /// Only lines timestamped at or after this, in microseconds since 1970 (lines without a timestamp are left out).
    package var sinceMicros: Int64?
    /// Only lines timestamped before this.
    package var untilMicros: Int64?
    /// Page size, 1 to ``maxLimit``.
    package var limit: Int
    /// Continue after this line (log id, line number).
    package var after: IndexCursor?

    package init(
        namespace: String? = nil, pod: String? = nil, container: String? = nil, previous: Bool? = nil,
        text: String? = nil, sinceMicros: Int64? = nil, untilMicros: Int64? = nil, limit: Int = 500,
        after: IndexCursor? = nil
    ) {
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.previous = previous
        self.text = text
        self.sinceMicros = sinceMicros
        self.untilMicros = untilMicros
        self.limit = limit
        self.after = after
    }
}

/// What an `events` listing asks for. Events are ordered newest first (last time, else first time).
package struct EventQuery: Sendable, Equatable {
    /// Only this namespace.
    package var namespace: String?
    /// Only this type (`Normal`, `Warning`).
    package var type: String?
    /// Only events about objects of this kind.
    package var involvedKind: String?
    /// Only events about objects of this name.
    package var involvedName: String?
    /// Page size.
    package var limit: Int
    /// Continue after this event (time, sequence).
    package var after: IndexCursor?

    package init(
        namespace: String? = nil, type: String? = nil, involvedKind: String? = nil, involvedName: String? = nil,
        limit: Int = 100, after: IndexCursor? = nil
    ) {
        self.namespace = namespace
        self.type = type
        self.involvedKind = involvedKind
        self.involvedName = involvedName
        self.limit = limit
        self.after = after
    }
}

/// A resource as listings show it, with where its manifest is stored.
package struct IndexedResource: Sendable, Equatable {
    /// The index record.
    package var record: ResourceRecord
    /// Where the manifest's bytes are.
    package var location: ManifestLocation

    package init(record: ResourceRecord, location: ManifestLocation) {
        self.record = record
        self.location = location
    }
}

/// Where one manifest's bytes are in the object store: one ranged read.
package struct ManifestLocation: Sendable, Equatable {
    package var objectKey: String
    /// The first byte.
    package var offset: Int64
    /// How many bytes.
    package var length: Int64

    package init(objectKey: String, offset: Int64, length: Int64) {
        self.objectKey = objectKey
        self.offset = offset
        self.length = length
    }
}

/// A pod as the index keeps it: its record, its labels, and whether it was only seen through its logs.
package struct IndexedPod: Sendable, Equatable {
    /// The pod.
    package var record: PodRecord
    package var labels: [String: String]
    /// True for a pod that has logs in the snapshot but no entry in its pod lists.
    package var isOrphan: Bool

    package init(record: PodRecord, labels: [String: String], isOrphan: Bool) {
        self.record = record
        self.labels = labels
        self.isOrphan = isOrphan
    }
}

/// What metadata knows of one namespace.
package struct NamespaceSummary: Sendable, Equatable {
    /// The namespace's name.
    package var name: String
    package var podsByPhase: [String: Int]
    package var resourcesByKind: [String: Int]

    package init(name: String, podsByPhase: [String: Int] = [:], resourcesByKind: [String: Int] = [:]) {
        self.name = name
        self.podsByPhase = podsByPhase
        self.resourcesByKind = resourcesByKind
    }
}

/// The counts of a snapshot's index, recorded when ingest finishes.
package struct SnapshotCounts: Sendable, Equatable, Codable {
    /// Namespaces (from folders, objects' namespaces and Namespace objects).
    package var namespaces = 0
    /// Objects of every kind.
    package var resources = 0
    /// Pods, orphan pods included.
    package var pods = 0
    /// Pods with logs but no entry in the pod lists.
    package var orphanPods = 0
    package var events = 0
    /// Container logs.
    package var logStreams = 0
    package var logLines = 0
    /// Container logs that could not be fetched when the snapshot was taken.
    package var logFetchErrors = 0
    /// List items without a name or kind, left out.
    package var skippedItems = 0

    package init() {}
}

/// How far ingest has come: compressed bytes and archive entries read.
package struct IngestProgress: Sendable, Equatable {
    /// Archive bytes read.
    package var bytesRead: Int64
    /// Archive entries (or stdout documents) read.
    package var entriesRead: Int

    package init(bytesRead: Int64, entriesRead: Int) {
        self.bytesRead = bytesRead
        self.entriesRead = entriesRead
    }
}

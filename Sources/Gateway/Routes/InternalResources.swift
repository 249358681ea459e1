import Foundation
import KubinModel
import Orchestrators

/// The JSON shapes of `/internal/api/v1` answers. Timestamps are RFC 3339; absent values are left out.
enum InternalResources {
    /// A section left out of a partial answer.
    struct Missing: Encodable {
        var section: String
        var reason: String

        static func all(_ missing: [FanOut.Missing]) -> [Missing]? {
            missing.isEmpty ? nil : missing.map { Missing(section: $0.section, reason: $0.reason) }
        }
    }

    /// A page, with the sections that are missing from it (only when some are).
    struct Listing<Item: Encodable>: Encodable {
        var items: [Item]
        var nextCursor: String?
        var partial: [Missing]?

        private enum CodingKeys: String, CodingKey { case items, nextCursor, partial }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(items, forKey: .items)
            try container.encode(nextCursor, forKey: .nextCursor)
            try container.encodeIfPresent(partial, forKey: .partial)
        }
    }

    struct Namespace: Encodable {
        var name: String
        var pods: [String: Int]
        var resources: [String: Int]
        var warningEvents: Int?
        var logLines: Int?

        init(_ view: NamespaceView) {
            name = view.summary.name
            pods = view.summary.podsByPhase
            resources = view.summary.resourcesByKind
            warningEvents = view.activity?.warningEvents
            logLines = view.activity?.logLines
        }
    }

    struct Owner: Encodable {
        var kind: String
        var name: String
        var uid: String?
        var controller: Bool
    }

    struct Resource: Encodable {
        var kind: String
        var apiVersion: String
        var namespace: String?
        var name: String
        var uid: String?
        var labels: [String: String]
        var createdAt: Date?
        var owners: [Owner]

        init(_ resource: IndexedResource) {
            let record = resource.record
            kind = record.kind
            apiVersion = record.apiVersion
            namespace = record.namespace
            name = record.name
            uid = record.uid
            labels = record.labels
            createdAt = record.createdAtMicros.map(date)
            owners = record.owners.map { Owner(kind: $0.kind, name: $0.name, uid: $0.uid, controller: $0.isController) }
        }
    }

    struct Container: Encodable {
        var name: String
        var role: String
        var image: String?
        var state: String
        var stateReason: String?
        var ready: Bool
        var restarts: Int
        var lastTerminationReason: String?
        var lastExitCode: Int?

        init(_ container: ContainerRecord) {
            name = container.name
            role = container.role.rawValue
            image = container.image
            state = container.state
            stateReason = container.stateReason
            ready = container.isReady
            restarts = container.restarts
            lastTerminationReason = container.lastTerminationReason
            lastExitCode = container.lastExitCode
        }
    }

    struct LogStats: Encodable {
        var lines: Int
        var firstTimestamp: Date?
        var lastTimestamp: Date?
        var fetchErrors: [String: String]

        init(_ stats: PodLogStats) {
            lines = stats.lines
            firstTimestamp = stats.firstMicros.map(date)
            lastTimestamp = stats.lastMicros.map(date)
            fetchErrors = stats.fetchErrors
        }
    }

    struct Pod: Encodable {
        var namespace: String
        var name: String
        var phase: String
        var node: String?
        var orphan: Bool
        var labels: [String: String]
        var restarts: Int
        var containers: [Container]
        var logs: LogStats?

        init(_ pod: IndexedPod, logs: PodLogStats?) {
            namespace = pod.record.namespace
            name = pod.record.name
            phase = pod.record.phase
            node = pod.record.node
            orphan = pod.isOrphan
            labels = pod.labels
            restarts = pod.record.restarts
            containers = pod.record.containers.map(Container.init)
            self.logs = logs.map(LogStats.init)
        }
    }

    struct LogLine: Encodable {
        var namespace: String
        var pod: String
        var container: String
        var previous: Bool
        var line: Int
        var timestamp: Date?
        var text: String

        init(_ entry: LogEntry) {
            namespace = entry.stream.namespace
            pod = entry.stream.pod
            container = entry.stream.container
            previous = entry.stream.isPrevious
            line = entry.line.number
            timestamp = entry.line.timestampMicros.map(date)
            text = entry.line.text
        }
    }

    struct InvolvedObject: Encodable {
        var kind: String
        var name: String
        var namespace: String?
    }

    struct Event: Encodable {
        var namespace: String
        var name: String
        var type: String
        var reason: String
        var message: String
        var count: Int
        var firstTimestamp: Date?
        var lastTimestamp: Date?
        var involvedObject: InvolvedObject

        init(_ event: EventRecord) {
            namespace = event.namespace
            name = event.name
            type = event.type
            reason = event.reason
            message = event.message
            count = event.count
            firstTimestamp = event.firstMicros.map(date)
            lastTimestamp = event.lastMicros.map(date)
            involvedObject = InvolvedObject(
                kind: event.involvedKind, name: event.involvedName, namespace: event.involvedNamespace)
        }
    }

    struct Archive: Encodable {
        var sizeBytes: Int64
    }

    struct Overview: Encodable {
        var snapshot: SnapshotResource
        var namespaces: [Namespace]
        var podPhases: [String: Int]
        var mostRestarts: [Pod]
        var newestWarnings: [Event]?
        var logVolume: [String: Int]?
        var archive: Archive?
        var partial: [Missing]?

        init(_ view: OverviewView) {
            snapshot = SnapshotResource(view.snapshot)
            namespaces = view.namespaces.map(Namespace.init)
            podPhases = view.podPhases
            mostRestarts = view.mostRestarts.map { Pod($0, logs: nil) }
            newestWarnings = view.newestWarnings?.map(Event.init)
            logVolume = view.logVolume
            archive = view.archive.map { Archive(sizeBytes: $0.size) }
            partial = Missing.all(view.missing)
        }
    }

    static func date(_ micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }
}

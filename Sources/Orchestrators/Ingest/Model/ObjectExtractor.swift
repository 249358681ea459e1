import Foundation
import KubinModel

/// Reads the fields the index needs from one item of a List: the resource record always, and the pod or event
/// record for those kinds. Unknown fields are ignored; the item's full bytes are kept elsewhere.
package enum ObjectExtractor {
    /// What one item gave.
    package struct Extracted: Sendable, Equatable {
        /// The item as a resource.
        package var resource: ResourceRecord
        /// The pod, when the item is one.
        package var pod: PodRecord?
        /// The event, when the item is one.
        package var event: EventRecord?
    }

    /// Where an item came from, for what it does not say itself.
    package struct Context: Sendable {
        /// The List's `kind` (its item kind is this without `List`).
        package var listKind: String?
        /// The List's `apiVersion`.
        package var listAPIVersion: String?
        /// The kind the file's name implies.
        package var fileKind: String?
        /// The namespace the file belongs to.
        package var fileNamespace: String?

        package init(listKind: String?, listAPIVersion: String?, fileKind: String?, fileNamespace: String?) {
            self.listKind = listKind
            self.listAPIVersion = listAPIVersion
            self.fileKind = fileKind
            self.fileNamespace = fileNamespace
        }
    }

    /// Decodes `item`; nil when it has no name or no kind can be told (such items cannot be indexed).
    /// Throws when the bytes are not a JSON object of the expected shape.
    package static func extract(_ item: Data, context: Context) throws -> Extracted? {
        let header = try decoder.decode(Header.self, from: item)
        let listItemKind = context.listKind.flatMap { $0.hasSuffix("List") ? String($0.dropLast(4)) : nil }
        guard let name = header.metadata?.name, !name.isEmpty,
            let kind = header.kind ?? listItemKind.flatMap({ $0.isEmpty ? nil : $0 }) ?? context.fileKind
        else { return nil }
        let namespace =
            header.metadata?.namespace ?? (kind == "Namespace" || kind == "Node" ? nil : context.fileNamespace)
        let resource = ResourceRecord(
            kind: kind, apiVersion: header.apiVersion ?? context.listAPIVersion ?? "v1", namespace: namespace,
            name: name, uid: header.metadata?.uid, labels: header.metadata?.labels ?? [:],
            createdAtMicros: header.metadata?.creationTimestamp.flatMap(micros),
            owners: (header.metadata?.ownerReferences ?? []).map {
                OwnerReference(kind: $0.kind, name: $0.name, uid: $0.uid, isController: $0.controller ?? false)
            })
        var extracted = Extracted(resource: resource)
        if kind == "Pod" { extracted.pod = try pod(item, namespace: namespace ?? "", name: name) }
        if kind == "Event" { extracted.event = try event(item, namespace: namespace ?? "", name: name) }
        return extracted
    }

    private static func pod(_ item: Data, namespace: String, name: String) throws -> PodRecord {
        let pod = try decoder.decode(Pod.self, from: item)
        let statuses = Dictionary(
            ((pod.status?.initContainerStatuses ?? []) + (pod.status?.containerStatuses ?? [])).map { ($0.name, $0) },
            uniquingKeysWith: { first, _ in first })
        func record(_ spec: Pod.Container, role: ContainerRecord.Role) -> ContainerRecord {
            let status = statuses[spec.name]
            let (state, reason) = describe(status?.state)
            return ContainerRecord(
                name: spec.name, role: role, image: spec.image ?? status?.image, state: state, stateReason: reason,
                isReady: status?.ready ?? false, restarts: status?.restartCount ?? 0,
                lastTerminationReason: status?.lastState?.terminated?.reason,
                lastExitCode: status?.lastState?.terminated?.exitCode)
        }
        let initContainers = pod.spec?.initContainers ?? []
        let containers =
            initContainers.filter { $0.restartPolicy != "Always" }.map { record($0, role: .`init`) }
            + initContainers.filter { $0.restartPolicy == "Always" }.map { record($0, role: .sidecar) }
            + (pod.spec?.containers ?? []).map { record($0, role: .main) }
        return PodRecord(
            namespace: namespace, name: name, phase: pod.status?.phase ?? "Unknown", node: pod.spec?.nodeName,
            containers: containers)
    }

    private static func event(_ item: Data, namespace: String, name: String) throws -> EventRecord {
        let event = try decoder.decode(Event.self, from: item)
        let involved = event.involvedObject ?? event.regarding
        let first = (event.firstTimestamp ?? event.eventTime ?? event.deprecatedFirstTimestamp).flatMap(micros)
        let last =
            (event.lastTimestamp ?? event.series?.lastObservedTime ?? event.deprecatedLastTimestamp
            ?? event.eventTime).flatMap(micros)
        return EventRecord(
            namespace: namespace, name: name, type: event.type ?? "Normal", reason: event.reason ?? "",
            message: event.message ?? event.note ?? "",
            count: event.count ?? event.series?.count ?? event.deprecatedCount ?? 1,
            firstMicros: first, lastMicros: last ?? first, involvedKind: involved?.kind ?? "",
            involvedName: involved?.name ?? "", involvedNamespace: involved?.namespace)
    }

    /// The state a container is in and its reason.
    private static func describe(_ state: Pod.State?) -> (String, String?) {
        if let waiting = state?.waiting { return ("waiting", waiting.reason) }
        if state?.running != nil { return ("running", nil) }
        if let terminated = state?.terminated { return ("terminated", terminated.reason) }
        return ("unknown", nil)
    }

    /// An RFC 3339 timestamp as microseconds since 1970.
    static func micros(_ text: String) -> Int64? {
        Array(text.utf8).withUnsafeBytes { LogTimestamp.rfc3339($0, at: 0)?.0 }
    }

    private static let decoder = JSONDecoder()

    private struct Header: Decodable {
        struct Metadata: Decodable {
            struct Owner: Decodable {
                var kind: String
                var name: String
                var uid: String?
                var controller: Bool?
            }
            var name: String?
            var namespace: String?
            var uid: String?
            var labels: [String: String]?
            var creationTimestamp: String?
            var ownerReferences: [Owner]?
        }
        var kind: String?
        var apiVersion: String?
        var metadata: Metadata?
    }

    private struct Pod: Decodable {
        struct Container: Decodable {
            var name: String
            var image: String?
            var restartPolicy: String?
        }
        struct State: Decodable {
            struct Reason: Decodable { var reason: String? }
            struct Terminated: Decodable {
                var reason: String?
                var exitCode: Int?
            }
            var waiting: Reason?
            var running: [String: String]?
            var terminated: Terminated?
        }
        struct ContainerStatus: Decodable {
            var name: String
            var image: String?
            var ready: Bool?
            var restartCount: Int?
            var state: State?
            var lastState: State?
        }
        struct Spec: Decodable {
            var nodeName: String?
            var initContainers: [Container]?
            var containers: [Container]?
        }
        struct Status: Decodable {
            var phase: String?
            var initContainerStatuses: [ContainerStatus]?
            var containerStatuses: [ContainerStatus]?
        }
        var spec: Spec?
        var status: Status?
    }

    private struct Event: Decodable {
        struct Object: Decodable {
            var kind: String?
            var name: String?
            var namespace: String?
        }
        struct Series: Decodable {
            var count: Int?
            var lastObservedTime: String?
        }
        var type: String?
        var reason: String?
        var message: String?
        var note: String?
        var count: Int?
        var deprecatedCount: Int?
        var firstTimestamp: String?
        var lastTimestamp: String?
        var eventTime: String?
        var deprecatedFirstTimestamp: String?
        var deprecatedLastTimestamp: String?
        var series: Series?
        var involvedObject: Object?
        var regarding: Object?
    }
}

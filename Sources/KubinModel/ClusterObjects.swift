/// A reference from an object to the object that owns it (`metadata.ownerReferences`).
package struct OwnerReference: Sendable, Equatable, Codable {
    /// The owner's kind, for example `ReplicaSet`.
    package var kind: String
    /// The owner's name.
    package var name: String
    /// The owner's uid.
    package var uid: String?
    /// True for the managing controller.
    package var isController: Bool

    package init(kind: String, name: String, uid: String? = nil, isController: Bool = false) {
        self.kind = kind
        self.name = name
        self.uid = uid
        self.isController = isController
    }
}

/// One Kubernetes object of a snapshot, as the index knows it (its full manifest stays in storage).
package struct ResourceRecord: Sendable, Equatable {
    /// The kind, for example `Deployment` (from the List when the item lacks it).
    package var kind: String
    /// The API version, for example `apps/v1`.
    package var apiVersion: String
    /// The namespace; nil for cluster-scoped objects.
    package var namespace: String?
    package var name: String
    package var uid: String?
    package var labels: [String: String]
    /// `metadata.creationTimestamp`, in microseconds since 1970.
    package var createdAtMicros: Int64?
    /// `metadata.ownerReferences`.
    package var owners: [OwnerReference]

    package init(
        kind: String, apiVersion: String, namespace: String?, name: String, uid: String? = nil,
        labels: [String: String] = [:], createdAtMicros: Int64? = nil, owners: [OwnerReference] = []
    ) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.labels = labels
        self.createdAtMicros = createdAtMicros
        self.owners = owners
    }
}

/// A container of a pod, with its role and status.
package struct ContainerRecord: Sendable, Equatable, Codable {
    /// How the container runs in its pod.
    package enum Role: String, Sendable, Codable {
        /// Runs to completion before the main containers.
        case `init`
        /// An init container with `restartPolicy: Always`: runs beside the main containers.
        case sidecar
        /// A main container.
        case main
    }

    /// The container's name.
    package var name: String
    package var role: Role
    package var image: String?
    /// `waiting`, `running`, `terminated` or `unknown`.
    package var state: String
    /// The reason of the current state, when there is one (`CrashLoopBackOff`, `Completed`, ...).
    package var stateReason: String?
    /// Whether the container is ready.
    package var isReady: Bool
    /// How often it restarted.
    package var restarts: Int
    /// Why it last terminated (`lastState.terminated.reason`).
    package var lastTerminationReason: String?
    /// Its exit code then.
    package var lastExitCode: Int?

    package init(
        name: String, role: Role, image: String?, state: String, stateReason: String? = nil, isReady: Bool = false,
        restarts: Int = 0, lastTerminationReason: String? = nil, lastExitCode: Int? = nil
    ) {
        self.name = name
        self.role = role
        self.image = image
        self.state = state
        self.stateReason = stateReason
        self.isReady = isReady
        self.restarts = restarts
        self.lastTerminationReason = lastTerminationReason
        self.lastExitCode = lastExitCode
    }
}

/// A pod of a snapshot with what the UI's pod table shows.
package struct PodRecord: Sendable, Equatable {
    package var namespace: String
    package var name: String
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    package var phase: String
    /// `spec.nodeName`.
    package var node: String?
    /// Init, sidecar and main containers, in that order.
    package var containers: [ContainerRecord]

    package init(namespace: String, name: String, phase: String, node: String?, containers: [ContainerRecord]) {
        self.namespace = namespace
        self.name = name
        self.phase = phase
        self.node = node
        self.containers = containers
    }

    /// Restarts of all containers.
    package var restarts: Int { containers.reduce(0) { $0 + $1.restarts } }
}

/// A Kubernetes event of a snapshot.
package struct EventRecord: Sendable, Equatable {
    package var namespace: String
    /// The event object's name.
    package var name: String
    /// `Normal` or `Warning`.
    package var type: String
    /// The reason, for example `BackOff`.
    package var reason: String
    package var message: String
    /// How often it happened.
    package var count: Int
    /// First occurrence, in microseconds since 1970.
    package var firstMicros: Int64?
    /// Last occurrence, in microseconds since 1970.
    package var lastMicros: Int64?
    /// The involved object's kind.
    package var involvedKind: String
    /// The involved object's name.
    package var involvedName: String
    /// The involved object's namespace.
    package var involvedNamespace: String?

    package init(
        namespace: String, name: String, type: String, reason: String, message: String, count: Int,
        firstMicros: Int64?, lastMicros: Int64?, involvedKind: String, involvedName: String,
        involvedNamespace: String?
    ) {
        self.namespace = namespace
        self.name = name
        self.type = type
        self.reason = reason
        self.message = message
        self.count = count
        self.firstMicros = firstMicros
        self.lastMicros = lastMicros
        self.involvedKind = involvedKind
        self.involvedName = involvedName
        self.involvedNamespace = involvedNamespace
    }
}

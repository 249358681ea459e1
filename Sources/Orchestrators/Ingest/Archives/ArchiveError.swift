/// Why an archive cannot be read: broken, refused for safety, or over a limit. `reason` is written for a person;
/// it becomes the snapshot's `failureReason`.
package struct ArchiveError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which kind of problem this is.
    package enum Kind: Sendable, Equatable {
        /// The bytes are not what they claim to be (truncated, bad checksum, corrupt compression).
        case corrupt
        /// An entry is not allowed (absolute path, `..`, link, device, FIFO).
        case refusedEntry
        /// A limit against decompression bombs was exceeded.
        case limitExceeded
    }

    /// The kind of problem.
    package var kind: Kind
    /// A sentence for the snapshot's `failureReason`.
    package var reason: String

    package init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    package var description: String { reason }
}

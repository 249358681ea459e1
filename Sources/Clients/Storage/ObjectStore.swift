import KubinModel
import NIOCore

/// Stores whole objects (snapshot archives, the raw manifests written by ingest) by key.
///
/// Implementations: ``LocalObjectStore`` (a directory, the embedded default); an S3-compatible store comes later.
/// Every implementation makes a `put` atomic: a reader sees the whole new object or the old state, never a part.
package protocol ObjectStore: Sendable {
    /// Stores every byte of `body` under `key`, replacing any object there. If `body` throws, nothing is stored and
    /// the error is rethrown.
    func put(_ key: ObjectKey, body: some AsyncSequence<ByteBuffer, any Error>) async throws -> ObjectInfo

    /// The object's size, or nil when there is no object under `key`.
    func info(_ key: ObjectKey) async throws -> ObjectInfo?

    /// Streams the bytes of `range` (all of them when nil) to `consume`, in order.
    /// Throws ``ObjectStoreError/notFound`` when there is no object under `key`.
    func read(_ key: ObjectKey, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void) async throws

    /// Removes the object under `key`; removing a missing object is not an error.
    func delete(_ key: ObjectKey) async throws

    /// Removes every object whose key starts with `prefix` followed by `/` (a snapshot's manifests, say).
    func deleteAll(under prefix: ObjectKey) async throws

    /// Throws when the store cannot serve requests; used by `/readyz`.
    func checkHealth() async throws
}

/// Facts about a stored object.
package struct ObjectInfo: Sendable, Equatable {
    /// The object's size in bytes.
    package var size: Int64

    package init(size: Int64) { self.size = size }
}

/// A validated object key: `/`-separated segments of `A-Z a-z 0-9 . _ -`, none of them `.` or `..`.
package struct ObjectKey: Hashable, Sendable, CustomStringConvertible {
    /// The key text, for example `snapshots/0192…/archive`.
    package let rawValue: String

    /// The key's segments.
    package var segments: [Substring] { rawValue.split(separator: "/") }

    /// Returns nil for an empty key, an empty, `.` or `..` segment, or any other character.
    package init?(validating text: String) {
        guard !text.isEmpty, text.utf8.count <= 1024 else { return nil }
        for segment in text.split(separator: "/", omittingEmptySubsequences: false) {
            guard !segment.isEmpty, segment != ".", segment != "..",
                segment.utf8.allSatisfy({ Self.isAllowed($0) })
            else { return nil }
        }
        self.rawValue = text
    }

    package var description: String { rawValue }

    /// The original archive of the snapshot `id`.
    package static func archive(of id: SnapshotID) -> ObjectKey { ObjectKey(trusted: "snapshots/\(id)/archive") }

    /// The folder under which ingest writes the manifests of the snapshot `id`.
    package static func manifests(of id: SnapshotID) -> ObjectKey { ObjectKey(trusted: "snapshots/\(id)/manifests") }

    /// The `part`th batch of manifests of the snapshot `id`, in archive order.
    package static func manifests(of id: SnapshotID, part: Int) -> ObjectKey {
        ObjectKey(trusted: "snapshots/\(id)/manifests/\(part)")
    }

    /// A key made of segments known to be valid (a snapshot id is hex and `-`).
    private init(trusted text: String) {
        assert(ObjectKey(validating: text) != nil, "'\(text)' is not a valid key")
        self.rawValue = text
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }
}

/// Why an object store call failed.
package struct ObjectStoreError: Error, Sendable, CustomStringConvertible {
    private enum Base: Sendable { case notFound, rangeOutOfBounds, io }
    private let base: Base
    /// Detail for logs; may name paths, never credentials.
    package let message: String

    private init(_ base: Base, _ message: String) {
        self.base = base
        self.message = message
    }

    /// There is no object under the key.
    package static func notFound(_ key: ObjectKey) -> ObjectStoreError { .init(.notFound, "no object '\(key)'") }
    /// The requested range lies outside the object.
    package static func rangeOutOfBounds(_ key: ObjectKey) -> ObjectStoreError {
        .init(.rangeOutOfBounds, "range outside object '\(key)'")
    }
    /// The storage medium failed.
    package static func io(_ message: String) -> ObjectStoreError { .init(.io, message) }

    /// True for ``notFound(_:)``.
    package var isNotFound: Bool { base == .notFound }

    /// True for ``rangeOutOfBounds(_:)``.
    package var isRangeOutOfBounds: Bool { base == .rangeOutOfBounds }

    package var description: String { "ObjectStoreError: \(message)" }
}

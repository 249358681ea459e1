import Foundation
import TestSupport
import Testing

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "kubin-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Every regular file below `subpath`, relative to it.
    func files(under subpath: String = "") -> [String] {
        regularFiles(under: subpath.isEmpty ? path : path + "/" + subpath)
    }
}

/// How to open one implementation of a store protocol on empty state, for behaviour suites that run the same tests
/// against the embedded and the production implementation.
struct StoreFactory<Store: Sendable>: Sendable, CustomTestStringConvertible {
    let name: String
    let open: @Sendable () async throws -> (store: Store, close: @Sendable () async throws -> Void)

    var testDescription: String { name }

    /// Opens a store, runs `body` with it, and closes it whether `body` throws or not.
    func with(_ body: (Store) async throws -> Void) async throws {
        let (store, close) = try await open()
        do {
            try await body(store)
            try await close()
        } catch {
            try? await close()
            throw error
        }
    }
}

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
    /// Opens a store on empty state, runs the body with it (with whatever the store needs running beside it), and
    /// closes it whether the body throws or not.
    let run: @Sendable ((Store) async throws -> Void) async throws -> Void

    var testDescription: String { name }

    /// A factory from a `run` function.
    init(name: String, run: @escaping @Sendable ((Store) async throws -> Void) async throws -> Void) {
        self.name = name
        self.run = run
    }

    /// A factory for stores that need nothing running beside them: `open` returns the store and how to close it.
    init(
        name: String,
        open: @escaping @Sendable () async throws -> (store: Store, close: @Sendable () async throws -> Void)
    ) {
        self.name = name
        self.run = { body in
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

    /// Runs `body` with a store on empty state.
    func with(_ body: (Store) async throws -> Void) async throws { try await run(body) }
}

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import Clients

/// The implementations of ``ObjectStore``, each on an empty store; every behaviour test runs against all.
enum ObjectStores {
    static let local = StoreFactory<any ObjectStore>(name: "local directory") {
        let directory = try TemporaryDirectory()
        let store = try await LocalObjectStore.open(root: directory.path, threadPool: .singleton, writeSize: 4096)
        return (store, { directory.remove() })
    }

    /// The S3 test server's bucket, under a prefix of its own per test (a 5 MiB part size, S3's smallest, so the
    /// larger bodies go through multipart uploads).
    static let s3 = StoreFactory<any ObjectStore>(name: "S3") { body in
        let (location, credentials) = try TestServers.s3()
        try await withS3Store(location, credentials) { store, _ in try await body(store) }
    }

    /// The S3 server that does not check signatures, for listing by prefix (see scripts/services); listed 7 keys a
    /// page, so that continuation tokens are followed.
    static let openS3 = StoreFactory<any ObjectStore>(name: "S3 (listing)") { body in
        try await withS3Store(
            try TestServers.openS3(), .init(accessKeyID: "open", secretAccessKey: "open"), listPageSize: 7
        ) { store, _ in try await body(store) }
    }

    static let all = [local, s3]
    static let listing = [local, openS3]
}

/// Yields the given chunks, then optionally fails.
struct Chunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    var chunks: [ByteBuffer]
    var failure: (any Error & Sendable)?

    init(_ chunks: [ByteBuffer], failingWith failure: (any Error & Sendable)? = nil) {
        self.chunks = chunks
        self.failure = failure
    }

    func makeAsyncIterator() -> Iterator { Iterator(chunks: chunks[...], failure: failure) }

    struct Iterator: AsyncIteratorProtocol {
        var chunks: ArraySlice<ByteBuffer>
        var failure: (any Error & Sendable)?
        mutating func next() async throws -> ByteBuffer? {
            if let chunk = chunks.popFirst() { return chunk }
            if let failure { throw failure }
            return nil
        }
    }
}

/// Runs `body` with an S3 store on `location` under a prefix of its own (a 5 MiB part size, S3's smallest).
func withS3Store(
    _ location: S3Location, _ credentials: SigV4Signer.Credentials, listPageSize: Int = 1000,
    configuration: HTTPClient.Configuration = HTTPClient.Configuration(),
    _ body: (S3ObjectStore, S3Location) async throws -> Void
) async throws {
    var location = location
    location.prefix = "test-\(UUID().uuidString)"
    try await HTTPClient.withHTTPClient(configuration: configuration) { http in
        let store = S3ObjectStore(
            location: location, credentials: credentials, http: http, partSize: 5 << 20, listPageSize: listPageSize,
            logger: Logger(label: "s3"))
        try await body(store, location)
    }
}

func readAll(_ store: any ObjectStore, _ key: ObjectKey, range: Range<Int64>? = nil) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    try await store.read(key, range: range) { bytes += $0.readableBytesView }
    return bytes
}

func randomBytes(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
    var generator = SeededRandom(seed: seed)
    return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
}

/// Splits `bytes` into chunks of random sizes up to `maxChunk`.
func chunked(_ bytes: [UInt8], maxChunk: Int, seed: UInt64 = 3) -> [ByteBuffer] {
    var generator = SeededRandom(seed: seed)
    var chunks: [ByteBuffer] = []
    var offset = 0
    while offset < bytes.count {
        let size = min(bytes.count - offset, 1 + Int(generator.next() % UInt64(maxChunk)))
        chunks.append(ByteBuffer(bytes: bytes[offset..<offset + size]))
        offset += size
    }
    return chunks
}

/// Yields chunks until cancelled; tells `started` after the first.
struct EndlessBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let started: AsyncStream<Void>.Continuation

    func makeAsyncIterator() -> Iterator { Iterator(started: started) }

    struct Iterator: AsyncIteratorProtocol {
        let started: AsyncStream<Void>.Continuation
        mutating func next() async throws -> ByteBuffer? {
            started.yield()
            try await Task.sleep(for: .milliseconds(1))
            return ByteBuffer(repeating: 1, count: 4096)
        }
    }
}

@Suite struct ObjectStoreBehaviourTests {
    let key = ObjectKey(validating: "snapshots/0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1f/archive")!

    @Test(arguments: ObjectStores.listing)
    func deletesEverythingUnderAPrefixAndNothingElse(_ factory: StoreFactory<any ObjectStore>) async throws {
        try await factory.with { store in
            for index in 0..<1010 where index < 25 || index >= 1000 || index % 50 == 0 {
                _ = try await store.put(
                    ObjectKey(validating: "snapshots/a/manifests/\(index)")!, body: Chunks([ByteBuffer(string: "m")]))
            }
            let sibling = ObjectKey(validating: "snapshots/a/manifests-old/1")!
            let archive = ObjectKey(validating: "snapshots/a/archive")!
            _ = try await store.put(sibling, body: Chunks([ByteBuffer(string: "s")]))
            _ = try await store.put(archive, body: Chunks([ByteBuffer(string: "a")]))
            try await store.deleteAll(under: ObjectKey(validating: "snapshots/a/manifests")!)
            for index in [0, 24, 500, 1009] {
                #expect(try await store.info(ObjectKey(validating: "snapshots/a/manifests/\(index)")!) == nil)
            }
            #expect(try await store.info(sibling)?.size == 1, "a key that only starts with the prefix's text stays")
            #expect(try await store.info(archive)?.size == 1)
            try await store.deleteAll(under: ObjectKey(validating: "snapshots/none")!)  // nothing there: no error
        }
    }

    @Test(arguments: ObjectStores.all)
    func storesChunkedBodiesExactly(_ factory: StoreFactory<any ObjectStore>) async throws {
        try await factory.with { store in
            for (index, size) in [0, 1, 4095, 4096, 4097, 100_000].enumerated() {
                let bytes = randomBytes(size, seed: UInt64(index))
                let key = ObjectKey(validating: "o/\(index)")!
                let info = try await store.put(key, body: Chunks(chunked(bytes, maxChunk: 9000, seed: UInt64(size))))
                #expect(info.size == Int64(size))
                #expect(try await store.info(key) == ObjectInfo(size: Int64(size)))
                #expect(try await readAll(store, key) == bytes)
            }
        }
    }

    @Test(arguments: ObjectStores.all)
    func readsRanges(_ factory: StoreFactory<any ObjectStore>) async throws {
        try await factory.with { store in
            let bytes = randomBytes(10_000)
            _ = try await store.put(key, body: Chunks([ByteBuffer(bytes: bytes)]))
            #expect(try await readAll(store, key, range: 0..<1) == [bytes[0]])
            #expect(try await readAll(store, key, range: 9_000..<10_000) == Array(bytes[9_000...]))
            #expect(try await readAll(store, key, range: 1234..<5678) == Array(bytes[1234..<5678]))
            await #expect(throws: ObjectStoreError.self) { _ = try await readAll(store, key, range: 9_999..<10_001) }
        }
    }

    @Test(arguments: ObjectStores.all)
    func replacesAndDeletes(_ factory: StoreFactory<any ObjectStore>) async throws {
        try await factory.with { store in
            _ = try await store.put(key, body: Chunks([ByteBuffer(string: "first version")]))
            _ = try await store.put(key, body: Chunks([ByteBuffer(string: "second")]))
            #expect(try await readAll(store, key) == Array("second".utf8))
            try await store.delete(key)
            #expect(try await store.info(key) == nil)
            await #expect { _ = try await readAll(store, key) } throws: {
                ($0 as? ObjectStoreError)?.isNotFound == true
            }
            try await store.delete(key)  // deleting a missing object is fine
        }
    }

    @Test(arguments: ObjectStores.all)
    func aFailingBodyStoresNothing(_ factory: StoreFactory<any ObjectStore>) async throws {
        struct Disconnected: Error {}
        try await factory.with { store in
            _ = try await store.put(key, body: Chunks([ByteBuffer(string: "old")]))
            await #expect(throws: Disconnected.self) {
                _ = try await store.put(
                    key, body: Chunks(chunked(randomBytes(50_000), maxChunk: 5000), failingWith: Disconnected()))
            }
            #expect(try await readAll(store, key) == Array("old".utf8), "the old object is untouched")
            let other = ObjectKey(validating: "never/written")!
            await #expect(throws: Disconnected.self) {
                _ = try await store.put(other, body: Chunks([ByteBuffer(string: "x")], failingWith: Disconnected()))
            }
            #expect(try await store.info(other) == nil)
        }
    }
}

@Suite struct LocalObjectStoreTests {
    @Test func leavesNoFilesBehindAFailedPutAndCleansEmptyDirectories() async throws {
        struct Disconnected: Error {}
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try await LocalObjectStore.open(root: directory.path, threadPool: .singleton, writeSize: 1024)
        let key = ObjectKey(validating: "snapshots/abc/archive")!
        await #expect(throws: Disconnected.self) {
            _ = try await store.put(
                key, body: Chunks(chunked(randomBytes(20_000), maxChunk: 3000), failingWith: Disconnected()))
        }
        #expect(directory.files().isEmpty, "no staged or partial file: \(directory.files())")
        _ = try await store.put(key, body: Chunks([ByteBuffer(string: "x")]))
        #expect(directory.files() == ["objects/snapshots/abc/archive"])
        try await store.delete(key)
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/objects/snapshots/abc"))
        #expect(
            FileManager.default.fileExists(atPath: directory.path + "/objects/snapshots"),
            "the first segment's directory is shared by all keys and stays")
    }

    @Test func aCancelledPutLeavesNothing() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try await LocalObjectStore.open(root: directory.path, threadPool: .singleton, writeSize: 1024)
        let started = AsyncStream.makeStream(of: Void.self)
        await withThrowingTaskGroup(of: ObjectInfo.self) { group in
            group.addTask {
                try await store.put(
                    ObjectKey(validating: "snapshots/cancel/archive")!, body: EndlessBody(started: started.continuation)
                )
            }
            for await _ in started.stream { break }
            group.cancelAll()
            await #expect(throws: (any Error).self) { _ = try await group.next() }
        }
        #expect(directory.files().isEmpty, "\(directory.files())")
    }

    @Test func putsAndDeletesUnderOneDirectoryDoNotTripOverEachOther() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try await LocalObjectStore.open(root: directory.path, threadPool: .singleton)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    let key = ObjectKey(validating: "snapshots/s\(index)/archive")!
                    _ = try await store.put(key, body: Chunks([ByteBuffer(string: "x")]))
                    try await store.delete(key)
                }
            }
            try await group.waitForAll()
        }
        #expect(directory.files().isEmpty)
    }

    @Test func openingEmptiesStagingAndHealthFollowsTheDirectory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.path + "/staging", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(
            atPath: directory.path + "/staging/left-by-a-crash", contents: Data("x".utf8))
        let store = try await LocalObjectStore.open(root: directory.path, threadPool: .singleton)
        #expect(directory.files().isEmpty)
        try await store.checkHealth()
        try FileManager.default.removeItem(atPath: directory.path + "/objects")
        await #expect(throws: ObjectStoreError.self) { try await store.checkHealth() }
    }

    @Test(arguments: ["", "/abs", "a//b", "a/../b", "..", ".", "a/./b", "a b", "a/b/", "ü", "a\\b"])
    func refusesUnsafeKeys(_ key: String) {
        #expect(ObjectKey(validating: key) == nil)
    }

    @Test(arguments: ["a", "snapshots/0192f1c4/archive", "A-Z_0.9/x"])
    func acceptsPlainKeys(_ key: String) {
        #expect(ObjectKey(validating: key)?.rawValue == key)
    }
}

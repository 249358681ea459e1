import Foundation
import NIOCore
import NIOFileSystem
import NIOPosix

/// The embedded ``ObjectStore``: one directory on a local file system.
///
/// Objects live at `<root>/objects/<key>`. A put writes into `<root>/staging` through an unnamed file (`O_TMPFILE`
/// where Linux has it, so a crash mid-write leaves nothing), coalescing the body into large writes; then it fsyncs the
/// file, links it into staging, renames it over the final path (an atomic replace) and fsyncs the directory. A reader
/// therefore never sees a partial object, and a failed, cancelled or abandoned put leaves no file. Opening the store
/// empties staging, which can only hold files from a crash between link and rename; the data directory's lock (see the
/// gateway) keeps a second instance from doing that under a running one.
///
/// File I/O runs on the thread pool it is given, so a slow fsync here never stalls other blocking work.
package final class LocalObjectStore: ObjectStore {
    private let objectsDirectory: FilePath
    private let stagingDirectory: FilePath
    private let fileSystem: FileSystem
    private let threadPool: NIOThreadPool
    private let writeSize: Int

    private init(root: FilePath, threadPool: NIOThreadPool, writeSize: Int) {
        self.objectsDirectory = root.appending("objects")
        self.stagingDirectory = root.appending("staging")
        self.fileSystem = FileSystem(threadPool: threadPool)
        self.threadPool = threadPool
        self.writeSize = writeSize
    }

    /// Opens the store rooted at `root`, creating its directories and emptying staging.
    /// `writeSize` is how many bytes a put gathers before one write call.
    package static func open(
        root: String, threadPool: NIOThreadPool, writeSize: Int = 256 * 1024
    ) async throws -> LocalObjectStore {
        let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        let store = LocalObjectStore(root: FilePath(absolute), threadPool: threadPool, writeSize: writeSize)
        try await store.fileSystem.removeItem(at: store.stagingDirectory, recursively: true)
        try await store.fileSystem.createDirectory(at: store.stagingDirectory, withIntermediateDirectories: true)
        try await store.fileSystem.createDirectory(at: store.objectsDirectory, withIntermediateDirectories: true)
        return store
    }

    package func put(_ key: ObjectKey, body: some AsyncSequence<ByteBuffer, any Error>) async throws -> ObjectInfo {
        let staged = stagingDirectory.appending(UUID().uuidString.lowercased())
        let size = try await fileSystem.withFileHandle(
            forWritingAt: staged, options: .newFile(replaceExisting: false)
        ) { handle in
            // Throwing here closes the handle without making the file visible.
            let size = try await write(body, to: handle)
            try await handle.synchronize()
            return size
        }
        let destination = path(of: key)
        var isInPlace = false
        do {
            try await moveIntoPlace(staged, destination)
            isInPlace = true
            try await synchronizeDirectories(from: destination.removingLastComponent())
        } catch {
            // A put that throws leaves no object: neither the staged file nor one that is not known to be durable.
            let leftover = isInPlace ? destination : staged
            try? await uncancellable { _ = unlink(leftover.string) }
            throw error
        }
        return ObjectInfo(size: size)
    }

    package func info(_ key: ObjectKey) async throws -> ObjectInfo? {
        guard let info = try await fileSystem.info(forFileAt: path(of: key), infoAboutSymbolicLink: false),
            info.type == .regular
        else { return nil }
        return ObjectInfo(size: info.size)
    }

    package func read(
        _ key: ObjectKey, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void
    ) async throws {
        do {
            try await fileSystem.withFileHandle(forReadingAt: path(of: key)) { handle in
                let size = try await handle.info().size
                let wanted = range ?? 0..<size
                guard wanted.lowerBound >= 0, wanted.upperBound <= size else {
                    throw ObjectStoreError.rangeOutOfBounds(key)
                }
                for try await chunk in handle.readChunks(in: wanted, chunkLength: .kibibytes(64)) {
                    try await consume(chunk)
                }
            }
        } catch let error as FileSystemError where error.code == .notFound {
            throw ObjectStoreError.notFound(key)
        }
    }

    package func delete(_ key: ObjectKey) async throws {
        let file = path(of: key)
        // The directory of the key's first segment (`objects/snapshots`) is shared by every key under it and stays:
        // removing it could race a put that has just created it. Below it, emptied directories go.
        let shared = objectsDirectory.appending(String(key.segments[0]))
        try await uncancellable {
            guard unlink(file.string) == 0 || errno == ENOENT else {
                throw ObjectStoreError.io("unlink failed: errno \(errno)")
            }
            var directory = file.removingLastComponent()
            while directory != shared, directory.starts(with: shared), rmdir(directory.string) == 0 {
                directory.removeLastComponent()
            }
        }
    }

    package func deleteAll(under prefix: ObjectKey) async throws {
        let directory = path(of: prefix)
        try await uncancellable {
            do {
                try FileManager.default.removeItem(atPath: directory.string)
            } catch let error as CocoaError where error.code == .fileNoSuchFile {
                return
            } catch {
                throw ObjectStoreError.io("removing \(prefix)/ failed: \(error)")
            }
        }
    }

    /// Checks on the shared blocking pool, not the store's own, so a queue of uploads' writes and fsyncs cannot make
    /// a healthy store look unready.
    package func checkHealth() async throws {
        for (directory, name) in [(objectsDirectory, "objects"), (stagingDirectory, "staging")] {
            guard let info = try await FileSystem.shared.info(forFileAt: directory), info.type == .directory else {
                throw ObjectStoreError.io("the \(name) directory is missing")
            }
        }
        let writable = try await NIOThreadPool.singleton.runIfActive { [stagingDirectory] in
            access(stagingDirectory.string, W_OK) == 0
        }
        guard writable else { throw ObjectStoreError.io("the staging directory is not writable") }
    }

    /// Renames `staged` over `destination` (atomic replace), creating the destination's directories; retries once when
    /// a concurrent delete removed a directory between its creation and the rename.
    private func moveIntoPlace(_ staged: FilePath, _ destination: FilePath) async throws {
        for attempt in 1...2 {
            try await fileSystem.createDirectory(
                at: destination.removingLastComponent(), withIntermediateDirectories: true)
            let failure = try await threadPool.runIfActive {
                rename(staged.string, destination.string) == 0 ? 0 : errno
            }
            if failure == 0 { return }
            if failure != ENOENT || attempt == 2 {
                throw ObjectStoreError.io("rename into place failed: errno \(failure)")
            }
        }
    }

    /// fsyncs `directory` and each parent up to the objects directory, so the new entries survive a power loss.
    private func synchronizeDirectories(from directory: FilePath) async throws {
        var directory = directory
        while directory.starts(with: objectsDirectory) {
            try await fileSystem.withDirectoryHandle(atPath: directory) { try await $0.synchronize() }
            if directory == objectsDirectory { break }
            directory.removeLastComponent()
        }
    }

    /// Runs `body` on the store's threads even if the calling task is cancelled: a cleanup must not be skipped.
    private func uncancellable<Result: Sendable>(
        _ body: @escaping @Sendable () throws -> Result
    ) async throws
        -> Result
    {
        try await threadPool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any(), body).get()
    }

    private func path(of key: ObjectKey) -> FilePath {
        key.segments.reduce(objectsDirectory) { $0.appending(String($1)) }
    }

    /// Writes the body with one `pwritev(2)` per `writeSize` bytes of received chunks: no copying into a staging
    /// buffer, and far fewer thread-pool hops than one write per network read.
    private func write(
        _ body: some AsyncSequence<ByteBuffer, any Error>, to handle: WriteFileHandle
    ) async throws -> Int64 {
        var offset: Int64 = 0
        var batch: [ByteBuffer] = []
        var batchBytes = 0
        for try await chunk in body where chunk.readableBytes > 0 {
            batch.append(chunk)
            batchBytes += chunk.readableBytes
            if batchBytes >= writeSize {
                offset += try await GatheredWrite.write(batch, at: offset, to: handle)
                batch.removeAll(keepingCapacity: true)
                batchBytes = 0
            }
        }
        if !batch.isEmpty { offset += try await GatheredWrite.write(batch, at: offset, to: handle) }
        return offset
    }
}

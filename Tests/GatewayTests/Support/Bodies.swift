import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport

/// Yields buffers one by one with no known length, so the client sends the body chunked.
struct StreamedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [ByteBuffer]
    func makeAsyncIterator() -> IndexingIterator<[ByteBuffer]>.Async { .init(base: chunks.makeIterator()) }
}

extension IndexingIterator {
    /// A synchronous iterator as an asynchronous one.
    struct Async: AsyncIteratorProtocol {
        var base: IndexingIterator
        mutating func next() async -> Element? { base.next() }
    }
}

/// Runs `scripts/generate-dump.py` and returns the archive's bytes.
func generatedDump(form: String, archive: String = "tar.gz", seed: Int = 1) throws -> [UInt8] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    let output = NSTemporaryDirectory() + "dump-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: output) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
        "python3", root.appendingPathComponent("scripts/generate-dump.py").path, "--out", output, "--form", form,
        "--archive", archive, "--seed", String(seed),
    ]
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TimedOut(what: "generate-dump.py (exit \(process.terminationStatus))")
    }
    return Array(try Data(contentsOf: URL(fileURLWithPath: output)))
}

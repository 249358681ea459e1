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
    try generatedDumpWithSummary(["--form", form, "--archive", archive, "--seed", String(seed)]).bytes
}

/// Runs `scripts/generate-dump.py` with `arguments` and returns the archive's bytes and the summary it prints.
func generatedDumpWithSummary(_ arguments: [String]) throws -> (bytes: [UInt8], summary: [String: Any]) {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    let output = NSTemporaryDirectory() + "dump-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: output) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments =
        ["python3", root.appendingPathComponent("scripts/generate-dump.py").path, "--out", output] + arguments
    let printed = Pipe()
    process.standardOutput = printed
    try process.run()
    let summary = printed.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestFailure("generate-dump.py failed (exit \(process.terminationStatus))")
    }
    return (
        Array(try Data(contentsOf: URL(fileURLWithPath: output))),
        try JSONSerialization.jsonObject(with: summary) as? [String: Any] ?? [:]
    )
}

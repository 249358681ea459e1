import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import Synchronization

/// A one-shot signal many tasks can wait for.
final class Gate: Sendable {
    private let state = Mutex<(isOpen: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.isOpen { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// A request body that sends its first chunk, then waits at `gate` before sending the rest: an upload that trickles
/// until the test lets it finish.
struct GatedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [ByteBuffer]
    let gate: Gate

    init(_ bytes: [UInt8], chunkSize: Int = 16 * 1024, gate: Gate) {
        self.chunks = stride(from: 0, to: bytes.count, by: chunkSize).map {
            ByteBuffer(bytes: bytes[$0..<Swift.min($0 + chunkSize, bytes.count)])
        }
        self.gate = gate
    }

    func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    struct Iterator: AsyncIteratorProtocol {
        let body: GatedBody
        var index = 0
        mutating func next() async throws -> ByteBuffer? {
            if index == 1 { await body.gate.wait() }
            guard index < body.chunks.count else { return nil }
            defer { index += 1 }
            return body.chunks[index]
        }
    }
}

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

func sha256Hex(_ bytes: some Sequence<UInt8>) -> String {
    SHA256.hash(data: Array(bytes)).map { String(format: "%02x", $0) }.joined()
}

/// A JSON document of `size` bytes.
func jsonBody(_ size: Int, seed: Int = 0) -> [UInt8] {
    var text = "{\"kind\":\"NodeList\",\"seed\":\(seed),\"items\":[],\"pad\":\""
    text += String(repeating: "x", count: max(0, size - text.utf8.count - 2)) + "\"}"
    return Array(text.utf8)
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

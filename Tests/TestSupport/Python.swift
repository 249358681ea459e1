import Foundation

/// Runs a Python script with `arguments` (its `sys.argv[1:]`) and `input` on its standard input, and returns its
/// standard output; throws when it fails.
package func python(_ script: String, arguments: [String] = [], input: [UInt8] = []) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let output = Pipe()
    let standardInput = Pipe()
    process.standardOutput = output
    process.standardInput = standardInput
    try process.run()
    standardInput.fileHandleForWriting.write(Data(input))
    try standardInput.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw PythonFailed(status: process.terminationStatus) }
    return Array(data)
}

/// A Python script exited with a failure status.
package struct PythonFailed: Error, CustomStringConvertible {
    /// The exit status.
    package var status: Int32
    package var description: String { "python3 exited with status \(status)" }
}

/// Runs `work`, which blocks its thread (waiting for a child process, say), on a thread of its own, so the
/// concurrency pool (which serves the gateway under test) keeps all of its threads.
package func offThePool<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Swift.Result { try work() }) }
    }
}

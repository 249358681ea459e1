import Foundation

/// Runs a Python script with `arguments` (its `sys.argv[1:]`) and `input` on its standard input, and returns its
/// standard output; throws when it fails.
package func python(_ script: String, arguments: [String] = [], input: [UInt8] = []) throws -> [UInt8] {
    let child = try ChildProcess(["python3", "-c", script] + arguments, input: .pipe, output: .pipe)
    child.standardInput?.write(Data(input))
    try child.standardInput?.close()
    let data = child.standardOutput?.readDataToEndOfFile() ?? Data()
    let status = child.waitUntilExit()
    guard status == 0 else { throw PythonFailed(status: status) }
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

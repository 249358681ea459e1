import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A Python program a test runs beside it (a proxy, a small server): started with `arguments`, it prints the port it
/// listens on as its first line of output; what it writes to standard error is the test's to read once it stops.
package final class BackgroundPython: Sendable {
    private let process: Process
    private let errors: Pipe
    /// The port from the program's first line.
    package let port: Int

    /// The program did not start, or printed no port.
    package struct Failed: Error, CustomStringConvertible {
        package var description: String { "the background Python program printed no port" }
    }

    /// Starts `script` with `arguments` and waits for its port.
    package init(script: String, arguments: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let output = Pipe()
        errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            kill(process.processIdentifier, SIGKILL)
            throw Failed()
        }
        self.port = port
    }

    /// Stops the program and returns the lines it wrote to standard error.
    package func stop() -> [String] {
        // SIGKILL: the test process ignores SIGTERM (service groups handle it), and children inherit that.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.split(separator: "\n").map(String.init)
    }
}

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A Python program a test runs beside it (a proxy, a small server): started with `arguments`, it prints the port it
/// listens on as its first line of output; what it writes to standard error is the test's to read once it stops.
package final class BackgroundPython: Sendable {
    private let child: ChildProcess
    /// The port from the program's first line.
    package let port: Int

    /// The program did not start, or printed no port.
    package struct Failed: Error, CustomStringConvertible {
        package var description: String { "the background Python program printed no port" }
    }

    /// Starts `script` with `arguments` and waits for its port.
    package init(script: String, arguments: [String]) throws {
        child = try ChildProcess(["python3", "-c", script] + arguments, output: .pipe, error: .pipe)
        var line = Data()
        while let byte = try child.standardOutput?.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            child.signal(SIGKILL)
            throw Failed()
        }
        self.port = port
    }

    /// Stops the program and returns the lines it wrote to standard error.
    package func stop() -> [String] {
        child.signal(SIGKILL)
        child.waitUntilExit()
        let text = String(decoding: child.standardError?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        return text.split(separator: "\n").map(String.init)
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The real `kubin-gateway` executable, started as a child process with its output captured in files.
final class GatewayProcess: Sendable {
    let process: ChildProcess
    let stdoutPath: String
    let stderrPath: String

    /// The executable built next to this test bundle.
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
            "kubin-gateway")
    }

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        let base = NSTemporaryDirectory() + "kubin-process-" + UUID().uuidString
        stdoutPath = base + ".out"
        stderrPath = base + ".err"
        // Each process's metrics listener on a free port, unless the test names one.
        process = try ChildProcess(
            [Self.executable.path] + arguments,
            environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KUBIN_") }
                .merging(["KUBIN_METRICS_PORT": "0"]) { $1 }.merging(environment) { $1 },
            output: .file(stdoutPath), error: .file(stderrPath))
    }

    deinit {
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }

    var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// The JSON log lines written so far.
    var logLines: [[String: Any]] {
        standardOutput.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    /// The port from the gateway's `listening` log line.
    func port(timeout: Duration = .seconds(30)) async throws -> Int {
        try await port(of: "listening", timeout: timeout)
    }

    /// The port of the `/metrics` listener, from its `metrics listening` log line.
    func metricsPort(timeout: Duration = .seconds(30)) async throws -> Int {
        try await port(of: "metrics listening", timeout: timeout)
    }

    private func port(of message: String, timeout: Duration) async throws -> Int {
        var port: Int?
        try await poll("the '\(message)' line", timeout: timeout) {
            port = logLines.first { $0["message"] as? String == message }.flatMap {
                ($0["port"] as? String).flatMap(Int.init)
            }
            return port != nil || !process.isRunning
        }
        guard let port else { throw TestFailure("the gateway exited: \(standardError)\(standardOutput)") }
        return port
    }

    /// The development token printed once the gateway listens.
    func developmentToken() async throws -> String {
        var token: String?
        try await poll("the development token") {
            token = standardError.split(separator: "\n").first { $0.contains("export KUBIN_TOKEN=") }
                .map { String($0.split(separator: "=", maxSplits: 1)[1]) }
            return token != nil || !process.isRunning
        }
        guard let token else { throw TestFailure("no development token was printed: \(standardError)") }
        return token
    }

    func signal(_ signal: Int32) { process.signal(signal) }

    /// Waits for the process to end and returns its exit status.
    func exitStatus(timeout: Duration = .seconds(60)) async throws -> Int32 {
        try await poll("the process to exit", timeout: timeout) { !process.isRunning }
        return process.exitStatus ?? -1
    }
}

/// True when nothing accepts TCP connections on `port` any more.
func connectionIsRefused(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return result != 0 && errno == ECONNREFUSED
}

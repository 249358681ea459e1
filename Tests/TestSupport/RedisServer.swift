import Clients
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A redis-server of the test's own (installed by scripts/services), on a free loopback port, for tests that stop
/// the server they use: the shared one serves every other test.
package final class RedisServer: Sendable {
    private let process: Process
    /// Where it listens.
    package let location: RedisLocation

    /// Starts a server and waits until it answers `PING`.
    package init() throws {
        let port = try freePort()
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        ]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        location = RedisLocation(url: "redis://127.0.0.1:\(port)/0")!
        let deadline = Date() + 10
        while !Self.answersPing(port: port) {
            guard Date() < deadline, process.isRunning else {
                stop()
                throw TestServers.Missing(variable: "a redis-server binary that starts (run scripts/test)")
            }
            usleep(20_000)
        }
    }

    /// Kills the server (SIGKILL: as abruptly as a crash).
    package func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }

    private static func answersPing(port: Int) -> Bool {
        let ping = Process()
        ping.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        ping.arguments = ["redis-cli", "-p", String(port), "ping"]
        let output = Pipe()
        ping.standardOutput = output
        ping.standardError = FileHandle.nullDevice
        guard (try? ping.run()) != nil else { return false }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ping.waitUntilExit()
        return text.contains("PONG")
    }
}

/// A loopback port nothing listens on now.
package func freePort() throws -> Int {
    let output = try python(
        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()")
    return Int(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))!
}

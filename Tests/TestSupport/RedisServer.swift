import Clients
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A redis-server of the test's own (installed by scripts/services), on a free loopback port, for tests that stop
/// the server they use: the shared one serves every other test.
package final class RedisServer: Sendable {
    private let server: ChildProcess
    /// Where it listens.
    package let location: RedisLocation

    /// Starts a server on `port` (a free one when nil) and waits until it answers `PING`.
    package init(port: Int? = nil) throws {
        let port = try port ?? freePort()
        server = try ChildProcess(
            ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            output: .discard)
        location = RedisLocation(url: "redis://127.0.0.1:\(port)/0")!
        let deadline = Date() + 10
        while !Self.answersPing(port: port) {
            guard Date() < deadline, server.isRunning else {
                stop()
                throw TestServers.Missing(variable: "a redis-server binary that starts (run scripts/test)")
            }
            usleep(20_000)
        }
    }

    /// Kills the server (SIGKILL: as abruptly as a crash).
    package func stop() {
        guard server.isRunning else { return }
        server.signal(SIGKILL)
        server.waitUntilExit()
    }

    private static func answersPing(port: Int) -> Bool {
        guard let ping = try? ChildProcess(["redis-cli", "-p", String(port), "ping"], output: .pipe, error: .discard)
        else { return false }
        let text = String(decoding: ping.standardOutput?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
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

import Foundation
import NIOCore
import NIOSSL
import Synchronization

/// A small pool of pipelined ``RedisConnection``s to one server.
///
/// Commands go round-robin over `size` connections, each opened on first use (with `AUTH` and `SELECT` from the URL)
/// and reopened after it fails; a slot whose connect failed waits out a backoff (`initialBackoff`, 100 ms, doubling to 5 s) before it
/// tries again, so a down server costs callers a fast error, not a connect per call. No background task: connecting
/// happens in the calling task, one per slot at a time.
package final class RedisClient: Sendable {
    /// Timeouts and size.
    package struct Settings: Sendable {
        package var connections = 4
        package var connectTimeout: Duration = .seconds(2)
        package var commandTimeout: Duration = .seconds(2)
        /// The first wait after a failed connect (it doubles up to 5 s).
        package var initialBackoff: Duration = .milliseconds(100)
        package init() {}
    }

    private final class Slot: Sendable {
        struct State {
            var connection: RedisConnection?
            var retryAt: ContinuousClock.Instant?
            var backoff: Duration
        }
        let state: Mutex<State>
        let connecting = AsyncLock()

        init(backoff: Duration) { state = Mutex(State(backoff: backoff)) }
    }

    private let location: RedisLocation
    private let settings: Settings
    private let tls: NIOSSLContext?
    private let slots: [Slot]
    private let next = Atomic(0)

    /// A client for the server at `location`; connects on first use.
    package init(_ location: RedisLocation, settings: Settings = Settings()) throws {
        self.location = location
        self.settings = settings
        self.tls = location.usesTLS ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        self.slots = (0..<max(1, settings.connections)).map { _ in Slot(backoff: settings.initialBackoff) }
    }

    /// Sends a command; a server error reply is thrown as ``RedisError``.
    package func send(_ arguments: [ByteBuffer]) async throws -> RESPValue {
        let slot = slots[next.add(1, ordering: .relaxed).newValue % slots.count]
        let connection = try await connection(in: slot)
        let reply = try await connection.send(arguments, timeout: settings.commandTimeout)
        if case .error(let message) = reply { throw RedisError(code: .serverError, message: message) }
        return reply
    }

    /// Sends a command given as strings.
    package func send(_ arguments: String...) async throws -> RESPValue {
        try await send(arguments.map { ByteBuffer(string: $0) })
    }

    /// Closes every connection.
    package func close() async {
        for slot in slots {
            if let connection = slot.state.withLock({ $0.connection }) { await connection.close() }
        }
    }

    private func connection(in slot: Slot) async throws -> RedisConnection {
        if let open = slot.state.withLock({ $0.connection }), open.isActive { return open }
        return try await slot.connecting.withLock {
            if let open = slot.state.withLock({ $0.connection }), open.isActive { return open }
            if let retryAt = slot.state.withLock({ $0.retryAt }), ContinuousClock.now < retryAt {
                throw RedisError(code: .backingOff, message: "cannot connect to \(location); retrying shortly")
            }
            do {
                let connection = try await openConnection()
                slot.state.withLock { $0 = Slot.State(connection: connection, backoff: settings.initialBackoff) }
                return connection
            } catch {
                slot.state.withLock { state in
                    state.connection = nil
                    state.retryAt = .now + state.backoff
                    state.backoff = min(state.backoff * 2, .seconds(5))
                }
                throw error
            }
        }
    }

    private func openConnection() async throws -> RedisConnection {
        let connection = try await RedisConnection.connect(
            host: location.host, port: location.port, tls: tls, timeout: settings.connectTimeout)
        do {
            var setup: [[String]] = []
            if let password = location.password {
                setup.append(location.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
            }
            if location.database != 0 { setup.append(["SELECT", String(location.database)]) }
            for command in setup {
                let reply = try await connection.send(
                    command.map { ByteBuffer(string: $0) }, timeout: settings.commandTimeout)
                // The reply text may echo nothing secret, but say only which step failed.
                if case .error = reply {
                    throw RedisError(code: .serverError, message: "\(command[0]) was refused by the server")
                }
            }
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }
}

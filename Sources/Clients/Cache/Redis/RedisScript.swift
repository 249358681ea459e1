import Crypto
import KubinModel
import KubinSupport
import NIOCore

/// A Lua script run with `EVALSHA`, loaded with `SCRIPT LOAD` when the server does not know it yet.
///
/// The SHA-1 is computed here, so a call is one `EVALSHA` round trip; a server that answers `NOSCRIPT` (it restarted,
/// or `SCRIPT FLUSH` ran) gets the source once and the call is repeated. Scripts are atomic on the server, which is
/// what the rate limiter needs to hold one limit across replicas.
package struct RedisScript: Sendable {
    /// The Lua source.
    package let source: String
    /// The lowercase hex SHA-1 of ``source``, as `SCRIPT LOAD` answers.
    package let sha1: String

    /// A script of this Lua source.
    package init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).hexString
    }
}

extension RedisClient {
    /// Runs `script` with `keys` (`KEYS[1...]`) and `arguments` (`ARGV[1...]`); a script error is a ``RedisError``.
    package func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RESPValue {
        let tail = ([String(keys.count)] + keys + arguments).map { ByteBuffer(string: $0) }
        do {
            return try await send([ByteBuffer(string: "EVALSHA"), ByteBuffer(string: script.sha1)] + tail)
        } catch let error as RedisError where error.code == .serverError && error.message.hasPrefix("NOSCRIPT") {
            let loaded = try await send("SCRIPT", "LOAD", script.source)
            guard case .bulkString(let sha?) = loaded, String(buffer: sha) == script.sha1 else {
                throw RedisError(code: .unexpectedReply, message: "SCRIPT LOAD answered an unexpected digest")
            }
            return try await send([ByteBuffer(string: "EVALSHA"), ByteBuffer(string: script.sha1)] + tail)
        }
    }
}

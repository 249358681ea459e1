import NIOCore

/// The production ``Cache``: Redis, shared by replicas, through ``RedisClient``.
///
/// Keys are prefixed with `keyPrefix` so one Redis can serve several installations. ``deleteAll(prefix:)`` walks
/// `SCAN MATCH` (the prefix's glob characters escaped) and `UNLINK`s what it finds: O(keys in Redis), for rare bulk
/// invalidation such as a snapshot's deletion.
package final class RedisCache: Cache {
    private let client: RedisClient
    private let keyPrefix: String

    /// A cache over `client` whose keys all start with `keyPrefix`.
    package init(client: RedisClient, keyPrefix: String = "kubin:") {
        self.client = client
        self.keyPrefix = keyPrefix
    }

    package func get(_ key: String) async throws -> ByteBuffer? {
        switch try await client.send([ByteBuffer(string: "GET"), ByteBuffer(string: keyPrefix + key)]) {
        case .bulkString(let value): return value
        default: throw RedisError(code: .unexpectedReply, message: "unexpected reply to GET")
        }
    }

    package func set(_ key: String, value: ByteBuffer, timeToLive: Duration?) async throws {
        var command = [ByteBuffer(string: "SET"), ByteBuffer(string: keyPrefix + key), value]
        if let timeToLive {
            let milliseconds = max(1, Int64(timeToLive / .milliseconds(1)))
            command += [ByteBuffer(string: "PX"), ByteBuffer(string: String(milliseconds))]
        }
        _ = try await client.send(command)
    }

    package func delete(_ key: String) async throws {
        _ = try await client.send([ByteBuffer(string: "DEL"), ByteBuffer(string: keyPrefix + key)])
    }

    package func deleteAll(prefix: String) async throws {
        let pattern = Self.escapeGlob(keyPrefix + prefix) + "*"
        var cursor = "0"
        repeat {
            guard case .array(let reply?) = try await client.send("SCAN", cursor, "MATCH", pattern, "COUNT", "1000"),
                reply.count == 2, case .bulkString(let next?) = reply[0], case .array(let keys?) = reply[1]
            else { throw RedisError(code: .unexpectedReply, message: "unexpected reply to SCAN") }
            cursor = String(buffer: next)
            let names = keys.compactMap { key -> ByteBuffer? in
                if case .bulkString(let name?) = key { return name }
                return nil
            }
            if !names.isEmpty { _ = try await client.send([ByteBuffer(string: "UNLINK")] + names) }
        } while cursor != "0"
    }

    package func checkHealth() async throws {
        guard case .simpleString("PONG") = try await client.send("PING") else {
            throw RedisError(code: .unexpectedReply, message: "unexpected reply to PING")
        }
    }

    /// `text` with Redis glob's special characters (`* ? [ ] \`) escaped.
    static func escapeGlob(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}

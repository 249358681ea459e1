import KubinSupport
import NIOCore

/// Rate-limit state in Redis, shared by every replica: one Lua script decides and updates a key atomically, on the
/// server's clock (`TIME`), so replicas with skewed clocks still share one limit.
package final class RedisRateLimitStore: RateLimitStore {
    private let client: RedisClient
    private let keyPrefix: String

    /// GCRA on the server: KEYS[1] the key; ARGV[1] the interval and ARGV[2] the period, in microseconds. Answers
    /// `{allowed (0|1), tat - now, retry-after}` in microseconds; an allowed request's TAT is stored until it passes.
    static let script = RedisScript(
        """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local interval = tonumber(ARGV[1])
        local period = tonumber(ARGV[2])
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local nextTat = tat + interval
        if nextTat - now > period then
          return {0, tat - now, nextTat - now - period}
        end
        redis.call('SET', KEYS[1], string.format('%d', nextTat), 'PX', math.ceil((nextTat - now) / 1000))
        return {1, nextTat - now, 0}
        """)

    /// A store over `client` whose keys start with `keyPrefix`.
    package init(client: RedisClient, keyPrefix: String = "kubin:ratelimit:") {
        self.client = client
        self.keyPrefix = keyPrefix
    }

    package func acquire(_ key: String, rate: GCRA) async throws -> GCRA.Decision {
        let reply = try await client.evaluate(
            Self.script, keys: [keyPrefix + key],
            arguments: [String(rate.intervalMicros), String(rate.periodMicros)])
        guard case .array(let values?) = reply, values.count == 3, case .integer(let allowed) = values[0],
            case .integer(let ahead) = values[1], case .integer(let retryAfter) = values[2]
        else { throw RedisError(code: .unexpectedReply, message: "unexpected reply to the rate limit script") }
        return GCRA.Decision(isAllowed: allowed == 1, ahead: ahead, retryAfterMicros: retryAfter, rate: rate)
    }
}

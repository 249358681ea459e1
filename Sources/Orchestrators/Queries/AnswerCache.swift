import Clients
import Crypto
import Foundation
import KubinModel
import KubinSupport
import Logging
import NIOCore

/// Caches the encoded answers about `ready` snapshots, which never change: cache-aside with no expiry (the cache's
/// size bound evicts), a strong ETag per answer, `If-None-Match` answered from the cache alone, and concurrent
/// identical misses coalesced into one computation. Entries of a snapshot are dropped when it is deleted.
///
/// A cache failure is never an answer failure: it is logged and the answer is computed.
package final class AnswerCache: Sendable {
    /// An encoded answer and its entity tag.
    package struct Answer: Sendable {
        package var body: ByteBuffer
        /// The strong ETag, quoted.
        package var etag: String
    }

    /// What to send.
    package enum Outcome: Sendable {
        /// The client's copy is current (`304`).
        case notModified(etag: String)
        case answer(Answer)
    }

    /// What a computation produced: the body, and whether it may be cached (a partial answer may not).
    package struct Computed: Sendable {
        package var body: ByteBuffer
        /// False for answers that must not be reused (partial ones).
        package var isCacheable: Bool

        package init(body: ByteBuffer, isCacheable: Bool) {
            self.body = body
            self.isCacheable = isCacheable
        }
    }

    private let cache: any Cache
    private let logger: Logger
    private let flights = SingleFlight<Answer>()

    package init(cache: any Cache, logger: Logger) {
        self.cache = cache
        self.logger = logger
    }

    /// The answer for `key` about `snapshot` as `tenant` sees it: from the cache, or from `compute` (once for
    /// concurrent identical misses). `ifNoneMatch` holds the client's entity tags (`*` matches any).
    ///
    /// Entries are kept per tenant: an answer computed for the snapshot's owner is never served to another tenant,
    /// whose own computation answers 404.
    package func answer(
        snapshot: SnapshotID, tenant: TenantID, key: String, ifNoneMatch: [String],
        compute: () async throws -> Computed
    ) async throws -> Outcome {
        let cacheKey = Self.prefix(snapshot) + tenant.rawValue + "/" + key
        let answer: Answer
        if let cached = await cached(cacheKey) {
            answer = cached
        } else {
            answer = try await flights.run(cacheKey) {
                let computed = try await compute()
                let answer = Answer(body: computed.body, etag: Self.etag(of: computed.body))
                if computed.isCacheable { await store(answer, under: cacheKey) }
                return answer
            }
        }
        if ifNoneMatch.contains(where: { $0 == "*" || Self.weakMatch($0, answer.etag) }) {
            return .notModified(etag: answer.etag)
        }
        return .answer(answer)
    }

    /// Drops every cached answer about `snapshot`.
    package func invalidate(_ snapshot: SnapshotID) async {
        do { try await cache.deleteAll(prefix: Self.prefix(snapshot)) } catch {
            logger.error("dropping a deleted snapshot's cached answers failed", metadata: ["error": "\(error)"])
        }
    }

    private func cached(_ key: String) async -> Answer? {
        do {
            guard var value = try await cache.get(key), let length = value.readInteger(as: UInt16.self),
                let etag = value.readString(length: Int(length))
            else { return nil }
            return Answer(body: value, etag: etag)
        } catch {
            Self.log(error, "cache read failed; answering from the stores", to: logger)
            return nil
        }
    }

    private func store(_ answer: Answer, under key: String) async {
        var value = ByteBuffer()
        value.reserveCapacity(2 + answer.etag.utf8.count + answer.body.readableBytes)
        value.writeInteger(UInt16(answer.etag.utf8.count))
        value.writeString(answer.etag)
        var body = answer.body
        value.writeBuffer(&body)
        do { try await cache.set(key, value: value, timeToLive: nil) } catch {
            Self.log(error, "cache write failed", to: logger)
        }
    }

    /// A cache failure is a warning; a call its guard refused (open breaker, full bulkhead) is not logged again: the
    /// breaker's change was, and its metrics count the refusals.
    private static func log(_ error: any Error, _ message: Logger.Message, to logger: Logger) {
        guard (error as? KubinError)?.code != .dependencyUnavailable else { return }
        logger.warning(message, metadata: ["error": "\(error)"])
    }

    private static func prefix(_ snapshot: SnapshotID) -> String { "answers/\(snapshot.rawValue)/" }

    /// A strong ETag: the first 128 bits of the body's SHA-256, base64url.
    static func etag(of body: ByteBuffer) -> String {
        "\"\(Base64URL.encode(SHA256.hash(data: body.readableBytesView).prefix(16)))\""
    }

    /// `If-None-Match` uses weak comparison (RFC 9110 13.1.2): `W/"x"` matches `"x"`.
    private static func weakMatch(_ candidate: String, _ etag: String) -> Bool {
        (candidate.hasPrefix("W/") ? String(candidate.dropFirst(2)) : candidate) == etag
    }
}

import Clients
import Crypto
import Foundation
import KubinModel
import KubinSupport
import Logging

/// Makes, lists, revokes and checks API keys.
///
/// A key's text is `kubin_<id>_<secret>`: a prefix that secret scanners and people recognise, 16 hex digits of id
/// (the public part, the row's key) and 64 hex digits (256 random bits) of secret. Only the secret's SHA-256 is
/// stored; a high-entropy secret needs no slow hash. The text is returned once, by ``create(tenant:scopes:name:)``.
///
/// Every check reads the key's row, so a revocation takes effect on the next request of every replica that shares the
/// metadata store: there is no cache to expire.
package struct APIKeyRegistry: Sendable {
    /// The text every key starts with.
    package static let prefix = "kubin_"

    /// What a presented key turned out to be.
    package enum Check: Sendable, Equatable {
        /// A live key: the caller is this principal.
        case valid(Principal)
        /// Not in the `kubin_<id>_<secret>` form.
        case malformed
        /// No such key, or the secret does not match (the two are not told apart).
        case unknown
        /// The key was revoked.
        case revoked
    }

    private let metadata: any APIKeyStore
    private let now: @Sendable () -> Date

    /// A registry over `metadata`.
    package init(metadata: any APIKeyStore, now: @escaping @Sendable () -> Date = Date.init) {
        self.metadata = metadata
        self.now = now
    }

    /// Makes a key for `tenant` with `scopes`; returns its record and its text (shown once, never stored).
    package func create(
        tenant: TenantID, scopes: Set<Scope>, name: String
    ) async throws -> (key: APIKey, text: String) {
        let id = Self.hex(randomBytes: 8)
        let secret = Self.hex(randomBytes: 32)
        let key = APIKey(
            id: id, tenant: tenant, scopes: scopes, name: name, secretSHA256: Self.sha256(secret), createdAt: now())
        try await dependency("metadata") { try await metadata.insertAPIKey(key) }
        return (key, "\(Self.prefix)\(id)_\(secret)")
    }

    /// Every key of `tenant` (every tenant's when nil), oldest first.
    package func list(tenant: TenantID?) async throws -> [APIKey] {
        try await dependency("metadata") { try await metadata.listAPIKeys(tenant: tenant) }
    }

    /// Revokes the key `id`; false when there is no such live key.
    package func revoke(id: String) async throws -> Bool {
        try await dependency("metadata") { try await metadata.revokeAPIKey(id: id, at: now()) }
    }

    /// What the presented `text` is.
    package func check(_ text: String) async throws -> Check {
        guard let (id, secret) = Self.parse(text) else { return .malformed }
        guard let key = try await dependency("metadata", { try await metadata.apiKey(id: id) }) else {
            return .unknown
        }
        guard Self.constantTimeEqual(Self.sha256(secret), key.secretSHA256) else { return .unknown }
        guard key.revokedAt == nil else { return .revoked }
        return .valid(Principal(subject: "key:\(key.id)", tenant: key.tenant, scopes: key.scopes, method: .apiKey))
    }

    /// The id and secret of a well-formed key text.
    static func parse(_ text: String) -> (id: String, secret: String)? {
        guard text.hasPrefix(prefix) else { return nil }
        let parts = text.dropFirst(prefix.count).split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == 16, parts[1].utf8.count == 64,
            parts.allSatisfy({ $0.utf8.allSatisfy(isLowercaseHex) })
        else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    private static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    private static func hex(randomBytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexString
    }

    private static func sha256(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).hexString
    }

    /// Compares without stopping at the first difference, so timing tells nothing about the stored hash.
    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

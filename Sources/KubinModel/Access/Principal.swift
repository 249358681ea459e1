import Foundation

/// The tenant a snapshot belongs to and a caller acts for.
///
/// Same rule as ``ClusterName`` (1 to 128 letters, digits, `.`, `_`, `-`, starting with a letter or digit): safe in
/// keys, logs and metric labels, and free of `/`, so `tenant/key` compositions cannot collide.
package struct TenantID: Hashable, Sendable, CustomStringConvertible {
    /// The validated text.
    package let rawValue: String

    /// The tenant of snapshots stored before tenants existed.
    package static let legacy = TenantID(validating: "default")!

    /// What a valid tenant looks like, for error messages.
    package static let rule = ClusterName.rule

    /// Returns nil when `text` breaks ``rule``.
    package init?(validating text: some StringProtocol) {
        guard ClusterName(validating: text) != nil else { return nil }
        self.rawValue = String(text)
    }

    package var description: String { rawValue }
}

/// What a caller may do.
package enum Scope: String, Sendable, CaseIterable, Hashable {
    /// Upload and delete snapshots.
    case snapshotsWrite = "snapshots:write"
    /// List and read snapshots, their archives and the internal API.
    case snapshotsRead = "snapshots:read"

    /// The scopes named in a space-separated `scope` claim or list; unknown names are ignored (they may be other
    /// services' scopes).
    package static func parse(_ names: some Sequence<some StringProtocol>) -> Set<Scope> {
        Set(names.compactMap { Scope(rawValue: String($0)) })
    }

    /// The scopes of a list an operator wrote (`snapshots:read,snapshots:write`, commas or spaces); nil when it is
    /// empty or names a scope that does not exist (an operator's typo must not pass as "no scope").
    package static func list(_ text: String) -> Set<Scope>? {
        let names = text.split(whereSeparator: { $0 == "," || $0 == " " })
        let scopes = parse(names)
        guard !names.isEmpty, scopes.count == Set(names).count else { return nil }
        return scopes
    }

    /// The scopes there are, for messages.
    package static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Who is calling: established by a verified token or API key, never by anything the client merely claims.
package struct Principal: Sendable, Equatable {
    /// How the caller proved who it is.
    package enum Method: String, Sendable {
        case jwt
        case apiKey = "api-key"
        case clientCertificate = "client-certificate"
        /// No credential: authentication is disabled.
        case none
    }

    /// The token's `sub`, or `key:<id>` for an API key.
    package var subject: String
    /// The tenant every read and write is confined to.
    package var tenant: TenantID
    /// What the caller may do.
    package var scopes: Set<Scope>
    /// How the caller authenticated.
    package var method: Method
    /// Scopes the token grants that are not the gateway's own (other services' scopes, checked on proxied routes).
    package var otherScopes: Set<String>

    package init(subject: String, tenant: TenantID, scopes: Set<Scope>, method: Method, otherScopes: Set<String> = []) {
        self.subject = subject
        self.tenant = tenant
        self.scopes = scopes
        self.method = method
        self.otherScopes = otherScopes
    }

    /// Every scope granted, by name.
    package var scopeNames: Set<String> { otherScopes.union(scopes.map(\.rawValue)) }
}

/// A stored API key: everything but its secret, of which only the SHA-256 is kept.
package struct APIKey: Sendable, Equatable {
    /// The public part of the key (also in the key text), used to find it.
    package var id: String
    /// The tenant the key acts for.
    package var tenant: TenantID
    /// What the key may do.
    package var scopes: Set<Scope>
    /// A name for people (`keys list` shows it).
    package var name: String
    /// SHA-256 of the secret part, lowercase hex.
    package var secretSHA256: String
    /// When it was made.
    package var createdAt: Date
    /// When it was revoked; nil while it works.
    package var revokedAt: Date?

    package init(
        id: String, tenant: TenantID, scopes: Set<Scope>, name: String, secretSHA256: String, createdAt: Date,
        revokedAt: Date? = nil
    ) {
        self.id = id
        self.tenant = tenant
        self.scopes = scopes
        self.name = name
        self.secretSHA256 = secretSHA256
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

import Crypto
import Foundation
import JWTKit
import KubinModel
import KubinSupport

/// One key a token may be verified with: its `kid`, the algorithms it verifies, and a jwt-kit collection holding it
/// alone (so jwt-kit can never pick another key than the one chosen here).
struct VerificationKey: Sendable {
    /// The key's id; nil for a key that has none (the HS256 secret).
    var kid: String?
    /// The `alg` values a token signed with this key may carry.
    var algorithms: Set<String>
    /// jwt-kit's verifier, with this key as its only (default) key.
    var collection: JWTKeyCollection

    /// The keys of a JWKS document that can verify tokens: RSA (RS256, or PS256 when the key says so), EC P-256
    /// (ES256) and Ed25519 (EdDSA). Keys for encryption or of other types are skipped, not fatal. A key without an
    /// `alg` is pinned to its type's one algorithm, so that no token can choose how it is used.
    static func fromJWKS(_ data: Data) async throws -> [VerificationKey] {
        guard let document = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let entries = document["keys"] as? [[String: Any]]
        else { throw JWKSError(message: "not a JWKS document (an object with a 'keys' array)") }
        var keys: [VerificationKey] = []
        for (index, var entry) in entries.enumerated() where entry["use"] as? String != "enc" {
            let alg = entry["alg"] as? String
            let pinned: String? =
                switch (entry["kty"] as? String, entry["crv"] as? String, alg) {
                case ("RSA", _, nil), ("RSA", _, "RS256"): "RS256"
                case ("RSA", _, "PS256"): "PS256"
                case ("EC", "P-256", nil), ("EC", "P-256", "ES256"): "ES256"
                case ("OKP", "Ed25519", nil), ("OKP", "Ed25519", "EdDSA"): "EdDSA"
                default: nil
                }
            guard let pinned else { continue }
            let kid = entry["kid"] as? String
            entry["alg"] = pinned
            entry["kid"] = kid ?? "jwks-key-\(index)"
            entry.removeValue(forKey: "d")  // a private part has no business here; verify with the public key only
            let jwk = try JSONDecoder().decode(JWK.self, from: JSONSerialization.data(withJSONObject: entry))
            let collection = JWTKeyCollection()
            try await collection.add(jwk: jwk)
            keys.append(VerificationKey(kid: kid, algorithms: [pinned], collection: collection))
        }
        return keys
    }

    /// The HS256 key of a shared secret.
    static func hs256(secret: String) async -> VerificationKey {
        let collection = JWTKeyCollection()
        await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return VerificationKey(kid: nil, algorithms: ["HS256"], collection: collection)
    }
}

/// A JWKS that could not be read.
struct JWKSError: Error, CustomStringConvertible {
    var message: String
    var description: String { "JWKS: \(message)" }
}

/// Verifies bearer JWTs locally: the header is checked before any key is used (`alg: none`, algorithms outside the
/// allow-list, a `crit` header (RFC 7515 §4.1.11: no extension is understood here), an algorithm that does not fit the
/// named key, a missing `kid` when several keys fit), the signature is verified by jwt-kit with exactly the chosen
/// key, and the claims (`exp` required and at most `maxLifetime` away, `nbf`, `iat` with leeway, `iss`, `aud`, the
/// tenant claim, `scope`/`scp`) are checked here.
///
/// ECDSA signatures are not required to be low-S: standard signers (OpenSSL, Java, Go) produce high-S signatures
/// about half the time, so refusing them would refuse valid tokens. The malleability this allows gives nothing away:
/// making the second form of a signature needs the first, a valid token of the same claims, and the remembered
/// verifications are keyed by the token's text, so the second form is verified on its own.
final class TokenVerifier: Sendable {
    /// What a token must carry.
    struct Rules: Sendable {
        var issuer: String?
        var audience: String?
        var tenantClaim = "tenant"
        var leeway: Duration = .seconds(60)
        /// The furthest away an `exp` may be.
        var maxLifetime: Duration = .seconds(86400)
    }

    /// The longest token accepted.
    static let maxTokenBytes = 8192
    private static let algorithms: Set<String> = ["RS256", "PS256", "ES256", "EdDSA", "HS256"]

    private let keys: KeySet
    private let rules: Rules

    init(keys: KeySet, rules: Rules) {
        self.keys = keys
        self.rules = rules
    }

    /// The principal `token` proves, or why it proves nothing.
    func verify(_ token: String, now: Date) async throws(AuthFailure) -> (principal: Principal, expires: Date) {
        guard token.utf8.count <= Self.maxTokenBytes else { throw .tooLarge }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]),
            let payloadBytes = Base64URL.decode(parts[1]), Base64URL.decode(parts[2]) != nil,
            let header = (try? JSONSerialization.jsonObject(with: headerBytes)) as? [String: Any],
            let payload = (try? JSONSerialization.jsonObject(with: payloadBytes)) as? [String: Any],
            let alg = header["alg"] as? String
        else { throw .malformed }
        guard alg.lowercased() != "none" else { throw .algNone }
        guard Self.algorithms.contains(alg) else { throw .unsupportedAlgorithm }
        guard header["crit"] == nil else { throw .criticalHeader }
        let kid = header["kid"] as? String
        if header["kid"] != nil, kid == nil { throw .malformed }
        let key = try await keys.key(kid: kid, alg: alg)
        do {
            _ = try await key.collection.verify(token, as: SignatureOnly.self)
        } catch {
            throw .badSignature
        }
        return try check(payload, now: now)
    }

    /// Checks the claims of a payload whose signature verified.
    func check(_ claims: [String: Any], now: Date) throws(AuthFailure) -> (principal: Principal, expires: Date) {
        let leeway = Double(rules.leeway.components.seconds)
        let now = now.timeIntervalSince1970
        guard let exp = try Self.time(claims["exp"]) else { throw .missingExpiry }
        guard now < exp + leeway else { throw .expired }
        guard exp - now <= Double(rules.maxLifetime.components.seconds) + leeway else { throw .lifetimeTooLong }
        if let nbf = try Self.time(claims["nbf"]), nbf > now + leeway { throw .notYetValid }
        if let iat = try Self.time(claims["iat"]), iat > now + leeway { throw .notYetValid }
        if let issuer = rules.issuer, claims["iss"] as? String != issuer { throw .wrongIssuer }
        if let audience = rules.audience {
            let audiences = (claims["aud"] as? [Any])?.compactMap { $0 as? String } ?? [claims["aud"] as? String]
            guard audiences.contains(audience) else { throw .wrongAudience }
        }
        guard let tenantValue = claims[rules.tenantClaim] else { throw .missingTenant }
        guard let tenantText = tenantValue as? String, let tenant = TenantID(validating: tenantText) else {
            throw .invalidTenant
        }
        let names: [String] =
            (claims["scope"] as? String).map { $0.split(separator: " ").map(String.init) }
            ?? (claims["scp"] as? [Any])?.compactMap { $0 as? String } ?? []
        let principal = Principal(
            subject: (claims["sub"] as? String).map { String($0.prefix(256)) } ?? "unknown", tenant: tenant,
            scopes: Scope.parse(names), method: .jwt,
            // Other services' scopes go upstream in a header: printable, bounded.
            otherScopes: Set(
                names.lazy.filter { Scope(rawValue: $0) == nil && $0.utf8.count <= 128 }
                    .filter { $0.utf8.allSatisfy { $0 > 32 && $0 < 127 } }.prefix(64)))
        return (principal, Date(timeIntervalSince1970: exp))
    }

    /// A NumericDate claim: nil when absent; a value that is not a number makes the token malformed.
    private static func time(_ value: Any?) throws(AuthFailure) -> Double? {
        guard let value else { return nil }
        guard !(value is String), let number = value as? NSNumber else { throw .malformed }
        return number.doubleValue
    }
}

/// A payload jwt-kit decodes nothing of: it verifies the signature only; the claims are checked by
/// ``TokenVerifier/check(_:now:)``.
private struct SignatureOnly: JWTPayload {
    init(from decoder: any Decoder) throws {}
    func encode(to encoder: any Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

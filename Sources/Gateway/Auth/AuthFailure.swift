import KubinModel

/// Why a credential was refused: a stable `reason` (the problem's `reason` member and the audit log's) and a sentence
/// for the client. Never holds the credential itself.
struct AuthFailure: Error, Sendable, Equatable {
    /// The stable reason, kebab-case.
    var reason: String
    /// What the client is told.
    var detail: String

    init(_ reason: String, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    /// The error answered to the client (401).
    var kubinError: KubinError { KubinError(.unauthenticated, detail, reason: reason) }

    static let missing = AuthFailure(
        "missing-credentials", "This route needs an 'Authorization: Bearer <token or API key>' header.")
    static let malformed = AuthFailure("malformed-token", "The token is not a well-formed JWT.")
    static let tooLarge = AuthFailure("token-too-large", "The token is longer than 8 KiB.")
    static let algNone = AuthFailure("alg-none", "Unsigned tokens (alg 'none') are refused.")
    static let unsupportedAlgorithm = AuthFailure(
        "unsupported-algorithm", "The token's algorithm is not one of RS256, PS256, ES256, EdDSA or HS256.")
    static let algorithmMismatch = AuthFailure(
        "algorithm-mismatch", "The token's algorithm does not match the type of the key it names.")
    static let missingKid = AuthFailure(
        "missing-kid", "The token names no key ('kid') and several keys could have signed it.")
    static let unknownKid = AuthFailure("unknown-kid", "The token names a key ('kid') the gateway does not know.")
    static let badSignature = AuthFailure("bad-signature", "The token's signature does not verify.")
    static let expired = AuthFailure("expired", "The token has expired.")
    static let missingExpiry = AuthFailure("missing-exp", "The token has no expiry ('exp').")
    static let lifetimeTooLong = AuthFailure(
        "lifetime-too-long", "The token's expiry ('exp') is further away than the longest lifetime the gateway accepts."
    )
    static let criticalHeader = AuthFailure(
        "unsupported-critical-header",
        "The token marks header parameters as critical ('crit'); the gateway understands none of them.")
    static let notYetValid = AuthFailure("not-yet-valid", "The token is not valid yet ('nbf' or 'iat' in the future).")
    static let wrongIssuer = AuthFailure("wrong-issuer", "The token's issuer ('iss') is not the one configured.")
    static let wrongAudience = AuthFailure("wrong-audience", "The token is not meant for this audience ('aud').")
    static let missingTenant = AuthFailure("missing-tenant", "The token carries no tenant claim.")
    static let invalidTenant = AuthFailure(
        "invalid-tenant", "The token's tenant claim is not a valid tenant name (\(TenantID.rule)).")
    static let unknownKey = AuthFailure("unknown-api-key", "The API key is not known.")
    static let revokedKey = AuthFailure("revoked-api-key", "The API key has been revoked.")
    static let badScheme = AuthFailure(
        "unsupported-scheme", "Only the Bearer scheme is accepted: 'Authorization: Bearer <token or API key>'.")
}

extension AuthFailure {
    static let repeatedHeader = AuthFailure(
        "repeated-authorization", "Send one 'Authorization' header; this request has several.")
    static let malformedKey = AuthFailure(
        "malformed-api-key", "The API key is not in the form 'kubin_<16 hex digits>_<64 hex digits>'.")
    static let badClientCertificate = AuthFailure(
        "invalid-client-certificate",
        "The client certificate names no valid tenant in its subject's Organization (O).")
}

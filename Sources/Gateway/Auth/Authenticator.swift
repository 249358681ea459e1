import Crypto
import Foundation
import KubinModel
import Orchestrators

/// Establishes who is calling from an `Authorization: Bearer <credential>` header: an API key (it starts with
/// `kubin_`) is checked against the metadata store on every request, so a revocation takes effect at once; a JWT is
/// verified locally by ``TokenVerifier`` and remembered by its hash until its `exp`.
final class Authenticator: Sendable {
    /// How the credential was presented, for the audit log.
    enum Method: String, Sendable {
        case jwt
        case apiKey = "api-key"
        case clientCertificate = "client-certificate"
        case none
    }

    private let verifier: TokenVerifier
    private let apiKeys: APIKeyRegistry
    private let verified = VerifiedTokens()
    private let leeway: Double
    private let now: @Sendable () -> Date

    /// An authenticator that verifies tokens with `verifier` and keys with `apiKeys`.
    init(
        verifier: TokenVerifier, apiKeys: APIKeyRegistry, leeway: Duration,
        now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.verifier = verifier
        self.apiKeys = apiKeys
        self.leeway = Double(leeway.components.seconds)
        self.now = now
    }

    /// The caller proved by `authorization` (the header's values), or the failure and how the credential came.
    /// Errors of the metadata store (while checking an API key) are thrown as they are.
    func authenticate(_ authorization: [String]) async throws -> Result<Principal, Refusal> {
        guard let header = authorization.first else { return .failure(Refusal(.missing, method: .none)) }
        guard authorization.count == 1 else { return .failure(Refusal(.repeatedHeader, method: .none)) }
        guard let credential = Self.bearerCredential(header) else {
            return .failure(Refusal(.badScheme, method: .none))
        }
        if credential.hasPrefix(APIKeyRegistry.prefix) {
            switch try await apiKeys.check(credential) {
            case .valid(let principal): return .success(principal)
            case .malformed: return .failure(Refusal(.malformedKey, method: .apiKey))
            case .unknown: return .failure(Refusal(.unknownKey, method: .apiKey))
            case .revoked: return .failure(Refusal(.revokedKey, method: .apiKey))
            }
        }
        guard credential.utf8.count <= TokenVerifier.maxTokenBytes else {
            return .failure(Refusal(.tooLarge, method: .jwt))
        }
        let digest = SHA256.hash(data: Array(credential.utf8))
        let now = now()
        if let principal = verified.principal(for: digest, now: now.timeIntervalSince1970) {
            return .success(principal)
        }
        do {
            let (principal, expires) = try await verifier.verify(credential, now: now)
            verified.remember(
                principal, for: digest, expires: expires.timeIntervalSince1970 + leeway,
                now: now.timeIntervalSince1970)
            return .success(principal)
        } catch {
            return .failure(Refusal(error, method: .jwt))
        }
    }

    /// The credential of `Bearer <credential>`: the scheme in any case, spaces and tabs around the credential
    /// ignored; nil for any other form. Bytes, not Foundation: this runs on every request (and `trimmingCharacters`
    /// bridges through NSString, which cost a tenth of the gateway's CPU under load).
    static func bearerCredential(_ header: String) -> String? {
        let bytes = Array(header.utf8)
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count + 1,
            zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 }),
            bytes[scheme.count] == UInt8(ascii: " ") || bytes[scheme.count] == UInt8(ascii: "\t")
        else { return nil }
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = scheme.count
        while start < bytes.count, isBlank(bytes[start]) { start += 1 }
        var end = bytes.count
        while end > start, isBlank(bytes[end - 1]) { end -= 1 }
        guard start < end else { return nil }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// A refused credential: why, and how it was presented.
    struct Refusal: Error, Sendable {
        var failure: AuthFailure
        var method: Method

        init(_ failure: AuthFailure, method: Method) {
            self.failure = failure
            self.method = method
        }
    }
}

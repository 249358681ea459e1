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
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return .failure(Refusal(.badScheme, method: .none))
        }
        let credential = String(parts[1].trimmingCharacters(in: .whitespaces))
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

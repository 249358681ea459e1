import Crypto
import Foundation

/// JWTs made for tests with swift-crypto and JSONSerialization directly: a second implementation beside the
/// gateway's jwt-kit, so a test token proves the format, not a shared mistake.
package enum TestTokens {
    /// The HS256 secret the tests' gateways share (`auth.hs256.secret`).
    package static let secret = "kubin-test-shared-secret-0123456789abcdef"

    /// Claims that pass the gateway's checks: `tenant`, `scopes`, valid for `validity` seconds from now.
    package static func claims(
        tenant: String = "default", scopes: String = "snapshots:read snapshots:write", validity: Int = 3600,
        subject: String = "test-user"
    ) -> [String: Any] {
        let now = Int(Date().timeIntervalSince1970)
        return ["sub": subject, "tenant": tenant, "scope": scopes, "iat": now, "exp": now + validity]
    }

    /// An HS256 token of `claims` signed with `secret`, with `header` fields added to `alg` and `typ`.
    package static func hs256(
        _ claims: [String: Any] = claims(), secret: String = secret, header: [String: Any] = [:]
    ) -> String {
        let head = ["alg": "HS256", "typ": "JWT"].merging(header) { $1 }
        let input = encode(json: head) + "." + encode(json: claims)
        let signature = HMAC<SHA256>.authenticationCode(
            for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return input + "." + base64URL(Data(signature))
    }

    /// `bytes` in base64url without padding.
    package static func base64URL(_ bytes: Data) -> String {
        bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// `value` as JSON, base64url.
    package static func encode(json value: Any) -> String {
        base64URL(try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]))
    }
}

import Crypto
import Foundation
import JWTKit
import KubinModel

#if canImport(Glibc)
    import Glibc
#endif

/// Development mode's own identity provider: an ES256 key kept in the data directory (made on first use, readable
/// only by its owner), which signs development tokens and is the only key the gateway trusts while no identity
/// provider is configured.
package struct DevelopmentSigner: Sendable {
    /// The key's id, in every development token's header.
    static let kid = "kubin-development"
    /// The `iss` of development tokens.
    static let issuer = "kubin-gateway-development"
    /// The key file's name in the data directory.
    package static let fileName = "development-signing-key.pem"

    private let keys: JWTKeyCollection
    private let tenantClaim: String

    /// The key the verifier trusts: the same key, pinned to ES256.
    let verificationKey: VerificationKey

    /// The signer of the key in `dataDirectory`, made there when it is missing.
    static func open(dataDirectory: String, tenantClaim: String) async throws -> DevelopmentSigner {
        let path = dataDirectory + "/" + fileName
        let pem = try readOrCreate(path: path)
        let key: ES256PrivateKey
        do { key = try ES256PrivateKey(pem: pem) } catch {
            throw DevelopmentKeyError(message: "\(path) does not hold an ES256 private key in PEM form: remove it")
        }
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        return DevelopmentSigner(
            keys: keys, tenantClaim: tenantClaim,
            verificationKey: VerificationKey(kid: kid, algorithms: ["ES256"], collection: keys))
    }

    /// A token for `subject` acting for `tenant` with `scopes`, valid from `now` for `validity`.
    package func token(
        subject: String, tenant: TenantID, scopes: Set<Scope>, validity: Duration, now: Date = Date()
    ) async throws -> String {
        let issued = Int(now.timeIntervalSince1970)
        let claims = DevelopmentClaims(
            values: [
                "iss": .string(Self.issuer), "sub": .string(subject), tenantClaim: .string(tenant.rawValue),
                "scope": .string(scopes.map(\.rawValue).sorted().joined(separator: " ")), "iat": .number(issued),
                "exp": .number(issued + Int(validity.components.seconds)),
            ])
        return try await keys.sign(claims, kid: JWKIdentifier(string: Self.kid))
    }

    /// The PEM at `path`, or a new key's, written with `O_EXCL` and mode 0600 (two processes starting at once agree
    /// on one key: the loser of the race reads the winner's).
    private static func readOrCreate(path: String) throws -> String {
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) { return existing }
        let pem = P256.Signing.PrivateKey().pemRepresentation
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            if errno == EEXIST, let existing = try? String(contentsOfFile: path, encoding: .utf8) { return existing }
            throw DevelopmentKeyError(message: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(descriptor) }
        let bytes = Array(pem.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            unlink(path)
            throw DevelopmentKeyError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return pem
    }
}

/// The development key could not be read or made.
struct DevelopmentKeyError: Error, CustomStringConvertible {
    var message: String
    var description: String { "development signing key: \(message)" }
}

/// Claims with names chosen at run time (the tenant claim is configurable).
private struct DevelopmentClaims: JWTPayload {
    enum Value: Codable, Sendable {
        case string(String)
        case number(Int)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let text): try container.encode(text)
            case .number(let number): try container.encode(number)
            }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) {
                self = .number(number)
            } else {
                self = .string(try container.decode(String.self))
            }
        }
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    var values: [String: Value]

    init(values: [String: Value]) { self.values = values }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        var values: [String: Value] = [:]
        for key in container.allKeys { values[key.stringValue] = try container.decode(Value.self, forKey: key) }
        self.values = values
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, value) in values { try container.encode(value, forKey: Key(stringValue: name)) }
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

import AsyncHTTPClient
import Clients
import Foundation
import Logging
import NIOSSL
import Orchestrators
import ServiceLifecycle

/// Who may call this gateway: the authenticator every protected request passes, the API key registry, and, in
/// development mode, the signer of development tokens.
package struct Access: Sendable {
    /// Checks the `Authorization` of requests.
    let authenticator: Authenticator
    /// Makes, lists and revokes API keys.
    package let apiKeys: APIKeyRegistry
    /// Development mode's signer; nil when an identity provider is configured.
    package let developmentSigner: DevelopmentSigner?
    /// Refreshes the JWKS on a timer; nil without a JWKS.
    let refresher: JWKSRefresher?

    /// Opens what `configuration` names: the development key (made in the data directory when missing), the HS256
    /// secret, the JWKS (read now: a JWKS that cannot be read stops the start). `closers` gets what must be closed.
    static func open(
        _ configuration: GatewayConfiguration, metadata: any APIKeyStore, logger: Logger,
        closers: inout [@Sendable () async throws -> Void], now: @escaping @Sendable () -> Date
    ) async throws -> Access {
        let auth = configuration.auth
        var fixed: [VerificationKey] = []
        var signer: DevelopmentSigner?
        if auth.isDevelopment {
            let development = try await DevelopmentSigner.open(
                dataDirectory: configuration.dataDirectory, tenantClaim: auth.tenantClaim)
            fixed.append(development.verificationKey)
            signer = development
        }
        if let secret = auth.hs256Secret { fixed.append(await VerificationKey.hs256(secret: secret)) }
        var source: KeySet.Source?
        if let jwks = auth.jwks {
            if jwks.hasPrefix("https://") {
                var tls = TLSConfiguration.makeClientConfiguration()
                if let caFile = auth.jwksCAFile { tls.trustRoots = .file(caFile) }
                var settings = HTTPClient.Configuration(tlsConfiguration: tls)
                settings.redirectConfiguration = .disallow
                let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
                closers.append { try await http.shutdown() }
                source = .url(jwks, http)
            } else {
                source = .file(jwks)
            }
        }
        let keys = KeySet(
            source: source, fixed: fixed, minimumRefreshInterval: auth.jwksMinimumRefreshInterval, logger: logger,
            now: now)
        try await keys.refresh()
        let verifier = TokenVerifier(
            keys: keys,
            rules: .init(
                issuer: auth.issuer ?? (auth.isDevelopment ? DevelopmentSigner.issuer : nil), audience: auth.audience,
                tenantClaim: auth.tenantClaim, leeway: auth.leeway))
        let apiKeys = APIKeyRegistry(metadata: metadata, now: now)
        return Access(
            authenticator: Authenticator(verifier: verifier, apiKeys: apiKeys, leeway: auth.leeway, now: now),
            apiKeys: apiKeys, developmentSigner: signer,
            refresher: source == nil ? nil : JWKSRefresher(keys: keys, interval: auth.jwksRefreshInterval))
    }
}

/// Reloads the JWKS every `interval` (a failed reload keeps the previous keys), so rotated keys are known before the
/// first token signed with them arrives. The timer is not bound by the minimum interval between refetches, which
/// only limits the refetches that unknown `kid`s cause.
struct JWKSRefresher: Service {
    /// The keys to refresh.
    let keys: KeySet
    /// Time between reloads.
    let interval: Duration

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                _ = await keys.reload()
            }
        }
    }
}

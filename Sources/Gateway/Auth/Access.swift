import AsyncHTTPClient
import Clients
import Foundation
import Logging
import NIOSSL
import Orchestrators

/// Who may call this gateway: the authenticator every protected request passes, the API key registry, and, in
/// development mode, the signer of development tokens.
package struct Access: Sendable {
    /// Checks the `Authorization` of requests.
    let authenticator: Authenticator
    /// Makes, lists and revokes API keys.
    package let apiKeys: APIKeyRegistry
    /// Development mode's signer; nil when an identity provider is configured.
    package let developmentSigner: DevelopmentSigner?
    /// Reloads the JWKS every `auth.jwksRefresh` (a failed reload keeps the previous keys), so rotated keys are known
    /// before the first token signed with them arrives; nil without a JWKS.
    let refresher: PeriodicService?

    /// Runs `body` with what `configuration` names: the development key (made in the data directory when missing),
    /// the HS256 secret, the JWKS (read now: a JWKS that cannot be read stops the start), fetched from an `https://`
    /// URL by an HTTP client that lives as long as `body` runs.
    static func with<Result>(
        _ configuration: GatewayConfiguration, keys: any APIKeyStore, logger: Logger,
        now: @escaping @Sendable () -> Date, _ body: (Access) async throws -> Result
    ) async throws -> Result {
        let auth = configuration.auth
        guard let jwks = auth.jwks, jwks.hasPrefix("https://") else {
            let source = auth.jwks.map(KeySet.Source.file)
            return try await body(open(configuration, source: source, keys: keys, logger: logger, now: now))
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = auth.jwksCAFile { tls.trustRoots = .file(caFile) }
        var settings = HTTPClient.Configuration(tlsConfiguration: tls)
        settings.redirectConfiguration = .disallow
        return try await HTTPClient.withHTTPClient(configuration: settings) { http in
            try await body(open(configuration, source: .url(jwks, http), keys: keys, logger: logger, now: now))
        }
    }

    private static func open(
        _ configuration: GatewayConfiguration, source: KeySet.Source?, keys: any APIKeyStore, logger: Logger,
        now: @escaping @Sendable () -> Date
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
        let keySet = KeySet(
            source: source, fixed: fixed, minimumRefreshInterval: auth.jwksMinimumRefreshInterval, logger: logger,
            now: now)
        try await keySet.refresh()
        let verifier = TokenVerifier(
            keys: keySet,
            rules: .init(
                issuer: auth.issuer ?? (auth.isDevelopment ? DevelopmentSigner.issuer : nil), audience: auth.audience,
                tenantClaim: auth.tenantClaim, leeway: auth.leeway, maxLifetime: auth.maxTokenLifetime))
        let apiKeys = APIKeyRegistry(metadata: keys, now: now)
        return Access(
            authenticator: Authenticator(verifier: verifier, apiKeys: apiKeys, leeway: auth.leeway, now: now),
            apiKeys: apiKeys, developmentSigner: signer,
            refresher: source.map { _ in
                // Not bound by the minimum interval between refetches, which only limits what unknown kids cause.
                PeriodicService(interval: auth.jwksRefreshInterval) { _ = await keySet.reload() }
            })
    }
}

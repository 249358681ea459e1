import Clients
import KubinModel
import KubinSupport
import Orchestrators

extension GatewayConfiguration {
    /// TLS termination on the API listener.
    package struct TLS: Sendable {
        /// The certificate chain, PEM.
        package var certificateFile: String
        /// The private key, PEM.
        package var privateKeyFile: String
        /// How often the two files are checked for a renewal.
        package var reloadInterval: Duration
        /// A PEM of the authorities whose client certificates authenticate internal callers; nil: none asked for.
        package var clientCAFile: String?
        /// The scopes of callers authenticated by a client certificate.
        package var clientScopes: Set<Scope>

        /// TLS when both files are set (one without the other is refused); nil otherwise, and then client
        /// certificates are refused too.
        init?(_ read: inout SettingsReader) {
            let certificateFile = read(\.tlsCertificateFile)
            let privateKeyFile = read(\.tlsPrivateKeyFile)
            let reloadInterval = read(\.tlsReloadInterval)
            let clientCAFile = read(\.tlsClientCAFile)
            let clientScopes = read(\.tlsClientScopes)
            switch (certificateFile, privateKeyFile) {
            case (let certificateFile?, let privateKeyFile?):
                self.init(
                    certificateFile: certificateFile, privateKeyFile: privateKeyFile, reloadInterval: reloadInterval,
                    clientCAFile: clientCAFile, clientScopes: clientScopes)
                return
            case (nil, .some): read.refuse(\.tlsCertificateFile, expected: "set together with tls.privateKeyFile")
            case (.some, nil): read.refuse(\.tlsPrivateKeyFile, expected: "set together with tls.certificateFile")
            case (nil, nil):
                if clientCAFile != nil {
                    read.refuse(
                        \.tlsClientCAFile, expected: "TLS (tls.certificateFile and tls.privateKeyFile) to be set")
                }
            }
            return nil
        }

        init(
            certificateFile: String, privateKeyFile: String, reloadInterval: Duration, clientCAFile: String?,
            clientScopes: Set<Scope>
        ) {
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
            self.reloadInterval = reloadInterval
            self.clientCAFile = clientCAFile
            self.clientScopes = clientScopes
        }
    }

    /// Rates per route class, per principal.
    package struct RateLimits: Sendable {
        /// The rate of each class; a class without one is unlimited.
        package var rates: [RateLimiter.RouteClass: GCRA]
        /// Replicas sharing the limit: each limits to rate ÷ this while the shared store (Redis) is unreachable.
        package var expectedReplicas: Int

        init(_ read: inout SettingsReader) {
            var rates: [RateLimiter.RouteClass: GCRA] = [:]
            for routeClass in RateLimiter.RouteClass.allCases {
                rates[routeClass] =
                    switch routeClass {
                    case .query: read(\.rateLimitQuery)
                    case .upload: read(\.rateLimitUpload)
                    case .admin: read(\.rateLimitAdmin)
                    }
            }
            self.rates = rates
            self.expectedReplicas = read(\.rateLimitExpectedReplicas)
        }
    }

    /// Cross-origin access for browsers.
    package struct CORS: Sendable {
        /// Origins (`scheme://host[:port]`) whose scripts may call; `*` for any; empty: none.
        package var allowedOrigins: Set<String>
        /// How long a browser may cache a preflight's answer.
        package var maxAge: Duration
    }

    /// Who may call: the identity provider's keys and the claims a token must carry.
    package struct Auth: Sendable {
        /// Where the JWKS is: a file path or an `https://` URL; nil when none is configured.
        package var jwks: String?
        /// An HS256 shared secret (at least 32 bytes); nil when none is configured.
        package var hs256Secret: String?
        /// The `iss` a token must carry; nil accepts any.
        package var issuer: String?
        /// The `aud` a token must carry (one of its values); nil accepts any.
        package var audience: String?
        /// The claim that names the caller's tenant.
        package var tenantClaim: String
        /// Tolerance for clock skew in `exp`, `nbf` and `iat`.
        package var leeway: Duration
        /// The furthest away a token's `exp` may be.
        package var maxTokenLifetime: Duration
        /// A PEM file of the certificate authorities trusted for an `https://` JWKS (nil: the system's).
        package var jwksCAFile: String?
        /// How often the JWKS is reloaded.
        package var jwksRefreshInterval: Duration
        /// The least time between two reloads, however many unknown `kid`s arrive.
        package var jwksMinimumRefreshInterval: Duration
        /// No credential asked at all: every caller is tenant `default` with every scope (loopback only; for
        /// local tools and for measuring what authentication costs).
        package var isDisabled: Bool

        /// No identity provider: the gateway signs its own development tokens and listens on loopback only.
        package var isDevelopment: Bool { jwks == nil && hs256Secret == nil }

        /// The settings of `auth.*`, checked against `host`, the API listener's address: without an identity
        /// provider, or with authentication disabled, only loopback may be bound.
        init(_ read: inout SettingsReader, host: String) {
            jwks = read(\.authJWKS)
            hs256Secret = read(\.authHS256Secret)
            issuer = read(\.authIssuer)
            audience = read(\.authAudience)
            tenantClaim = read(\.authTenantClaim)
            leeway = read(\.authLeeway)
            maxTokenLifetime = read(\.authMaxTokenLifetime)
            jwksCAFile = read(\.authJWKSCAFile)
            jwksRefreshInterval = read(\.authJWKSRefresh)
            jwksMinimumRefreshInterval = read(\.authJWKSMinRefresh)
            isDisabled = read(\.authDisabled)
            if jwks?.hasPrefix("http://") == true {
                read.refuse(\.authJWKS, expected: "a file path or an https:// URL (keys are never fetched in clear)")
            }
            if let hs256Secret, hs256Secret.utf8.count < 32 {
                read.refuse(\.authHS256Secret, expected: "at least 32 bytes")
            }
            guard !SettingValues.isLoopback(host) else { return }
            if isDisabled {
                read.refuse(\.authDisabled, expected: "false while http.host (\(host)) is not a loopback address")
            }
            if isDevelopment {
                read.refuse(
                    \.httpHost,
                    expected: "a loopback address (127.0.0.1, ::1 or localhost) while no identity provider is "
                        + "configured: set KUBIN_AUTH_JWKS (a JWKS file or https URL) or KUBIN_AUTH_HS256_SECRET to "
                        + "listen on \(host)")
            }
        }
    }
}

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore

/// The keys tokens are verified with: the JWKS's (re-read from its file or fetched from its URL on a timer and when a
/// token names an unknown `kid`, at most once per `minimumRefreshInterval`, so forged `kid`s cannot make the gateway
/// hammer the identity provider), plus fixed keys (the HS256 secret, the development key).
actor KeySet {
    /// Where a JWKS comes from.
    enum Source: Sendable {
        case file(String)
        case url(String, HTTPClient)
    }

    private let source: Source?
    private let fixed: [VerificationKey]
    private var jwks: [VerificationKey] = []
    private var lastRefresh: Date?
    private let minimumRefreshInterval: TimeInterval
    private let logger: Logger
    private let now: @Sendable () -> Date

    /// A key set over `fixed` keys and, when given, the JWKS at `source` (loaded by ``refresh()``).
    init(
        source: Source?, fixed: [VerificationKey], minimumRefreshInterval: Duration = .seconds(30), logger: Logger,
        now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.source = source
        self.fixed = fixed
        self.minimumRefreshInterval = Double(minimumRefreshInterval.components.seconds)
        self.logger = logger
        self.now = now
    }

    /// The key a token with this header must be verified with.
    func key(kid: String?, alg: String) async throws(AuthFailure) -> VerificationKey {
        if let kid {
            var found = (jwks + fixed).first { $0.kid == kid }
            if found == nil, await refreshIfAllowed() { found = (jwks + fixed).first { $0.kid == kid } }
            guard let key = found else { throw .unknownKid }
            guard key.algorithms.contains(alg) else { throw .algorithmMismatch }
            return key
        }
        let candidates = (jwks + fixed).filter { $0.algorithms.contains(alg) }
        guard candidates.count <= 1 else { throw .missingKid }
        guard let key = candidates.first else {
            throw (jwks + fixed).isEmpty ? .unknownKid : .algorithmMismatch
        }
        return key
    }

    /// Loads the JWKS now; throws when it cannot be read (at start, so a bad configuration stops the gateway).
    func refresh() async throws {
        guard let source else { return }
        lastRefresh = now()
        let data: Data
        switch source {
        case .file(let path):
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        case .url(let url, let http):
            let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(10), logger: logger)
            guard response.status == .ok else { throw JWKSError(message: "\(url) answered \(response.status.code)") }
            data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
        }
        let keys = try await VerificationKey.fromJWKS(data)
        jwks = keys
        logger.info("JWKS loaded", metadata: ["keys": "\(keys.count)"])
    }

    /// Refreshes unless the last refresh was too recent; true when the keys were reloaded.
    func refreshIfAllowed() async -> Bool {
        guard source != nil else { return false }
        if let lastRefresh, now().timeIntervalSince(lastRefresh) < minimumRefreshInterval { return false }
        return await reload()
    }

    /// Refreshes now (the timer's reload); a failure keeps the previous keys. True when the keys were reloaded.
    func reload() async -> Bool {
        do {
            try await refresh()
            return true
        } catch {
            logger.warning("refreshing the JWKS failed; the previous keys stay", metadata: ["error": "\(error)"])
            return false
        }
    }
}

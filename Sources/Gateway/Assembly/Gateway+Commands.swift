import Clients
import Foundation
import KubinModel
import Logging
import Orchestrators

extension Gateway {
    /// Runs a tool of `kubin-gateway` and returns what it prints. Key changes are audit log lines on `logger`.
    package static func run(
        _ command: Command, configuration: GatewayConfiguration, logger: Logger, now: Date = Date()
    ) async throws -> String {
        switch command {
        case .token(let tenant, let scopes, let validity, let subject):
            guard configuration.auth.isDevelopment else { throw ToolError.notDevelopmentMode }
            guard validity <= configuration.auth.maxTokenLifetime else {
                throw ToolError.longerThanAllowed(configuration.auth.maxTokenLifetime)
            }
            try FileManager.default.createDirectory(
                atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            let signer = try await DevelopmentSigner.open(
                dataDirectory: configuration.dataDirectory, tenantClaim: configuration.auth.tenantClaim)
            return try await signer.token(
                subject: subject, tenant: tenant, scopes: scopes, validity: validity, now: now)
        case .createKey(let tenant, let scopes, let name):
            return try await withAPIKeys(configuration, logger: logger) { keys in
                let (key, text) = try await keys.create(tenant: tenant, scopes: scopes, name: name)
                logger.notice(
                    "API key created",
                    metadata: [
                        "audit": "api-key-created", "key_id": "\(key.id)", "tenant": "\(tenant)",
                        "scopes": "\(APIKeyText.scopes(scopes))", "name": "\(name)",
                    ])
                return """
                    \(text)
                    This is the only time the key is shown: store it now. Its id is \(key.id) \
                    (tenant \(tenant), scopes \(APIKeyText.scopes(scopes))).
                    """
            }
        case .listKeys(let tenant):
            return try await withAPIKeys(configuration, logger: logger) { keys in
                let rows = try await keys.list(tenant: tenant).map { key in
                    [
                        key.id, key.tenant.rawValue, APIKeyText.scopes(key.scopes),
                        key.createdAt.formatted(.iso8601),
                        key.revokedAt.map { "revoked " + $0.formatted(.iso8601) } ?? "active", key.name,
                    ]
                }
                return APIKeyText.table(header: ["ID", "TENANT", "SCOPES", "CREATED", "STATUS", "NAME"], rows: rows)
            }
        case .revokeKey(let id):
            return try await withAPIKeys(configuration, logger: logger) { keys in
                guard try await keys.revoke(id: id) else { throw ToolError.noLiveKey(id) }
                logger.notice("API key revoked", metadata: ["audit": "api-key-revoked", "key_id": "\(id)"])
                return "Revoked \(id): every replica refuses it from its next request."
            }
        }
    }

    /// Runs `body` with the registry over the configured metadata store (its pool running meanwhile).
    private static func withAPIKeys(
        _ configuration: GatewayConfiguration, logger: Logger, _ body: (APIKeyRegistry) async throws -> String
    ) async throws -> String {
        if case .sqlite = configuration.metadata {
            try FileManager.default.createDirectory(
                atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        }
        return try await Stores.withMetadataStore(configuration.metadata, logger: logger) { metadata in
            try await body(APIKeyRegistry(metadata: metadata))
        }
    }
}

/// Why a tool could not do what it was asked.
package enum ToolError: Error, CustomStringConvertible {
    case notDevelopmentMode
    case noLiveKey(String)
    case longerThanAllowed(Duration)

    package var description: String {
        switch self {
        case .notDevelopmentMode:
            "development tokens exist only in development mode; an identity provider is configured (auth.jwks or "
                + "auth.hs256.secret): use its tokens, or an API key (kubin-gateway keys create)"
        case .noLiveKey(let id): "no active API key has the id '\(id.prefix(64))'"
        case .longerThanAllowed(let lifetime):
            "--ttl is longer than auth.maxTokenLifetime (\(SettingValues.text(of: lifetime))): the gateway would refuse "
                + "the token"
        }
    }
}

/// How the tools print keys.
enum APIKeyText {
    /// Scopes as a comma-separated list.
    static func scopes(_ scopes: Set<Scope>) -> String { scopes.map(\.rawValue).sorted().joined(separator: ",") }

    /// Rows in aligned columns.
    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, text in
                column == row.count - 1 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

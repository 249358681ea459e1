import Foundation
import KubinModel

/// Holds the API keys (their hashes) of every tenant.
package protocol APIKeyStore: Sendable {
    /// Stores a new API key (its id is unique: a clash throws).
    func insertAPIKey(_ key: APIKey) async throws

    /// The API key `id` (revoked ones included), or nil.
    func apiKey(id: String) async throws -> APIKey?

    /// Every API key of `tenant` (of all tenants when nil), oldest first.
    func listAPIKeys(tenant: TenantID?) async throws -> [APIKey]

    /// Marks the key `id` revoked at `at`; false when there is no such key or it was already revoked.
    func revokeAPIKey(id: String, at: Date) async throws -> Bool
}

import Foundation
import KubinModel

/// What both metadata stores do with index rows: read and write their JSON columns.
enum IndexRows {
    /// A JSON column's value; a missing or unreadable one is a corrupt row.
    static func decode<Value: Decodable>(_ type: Value.Type, _ text: String?) throws -> Value {
        guard let text, let value = try? JSONDecoder().decode(type, from: Data(text.utf8)) else {
            throw MetadataStoreError.corruptRow("an index row has unreadable JSON")
        }
        return value
    }

    /// `value` as a JSON column (keys sorted, so equal values are equal text).
    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()
}

/// How both metadata stores keep API keys' scopes and columns.
enum APIKeyRows {
    static let columns = "id, tenant, scopes, name, secret_sha256, created_at, revoked_at"

    /// Scopes as sorted, space-separated names.
    static func scopes(_ scopes: Set<Scope>) -> String { scopes.map(\.rawValue).sorted().joined(separator: " ") }
}

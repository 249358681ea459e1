import Foundation
import KubinSupport

/// A position in an index listing: the sort key of the last item of the previous page.
///
/// Clients see only the opaque ``token`` (base64url of a versioned JSON array); its form may change between versions.
package struct IndexCursor: Sendable, Equatable {
    /// The sort key's fields, in sort order.
    package var fields: [String]

    package init(_ fields: [String]) { self.fields = fields }

    /// The opaque text form.
    package var token: String {
        Base64URL.encode((try? JSONEncoder().encode(["c1"] + fields)) ?? Data())
    }

    /// Decodes a token made by ``token`` with exactly `arity` fields; nil for anything else.
    package init?(token: some StringProtocol, arity: Int) {
        guard token.utf8.count <= 4096 else { return nil }
        guard let data = Base64URL.decode(token),
            let parts = try? JSONDecoder().decode([String].self, from: data),
            parts.count == arity + 1, parts.first == "c1"
        else { return nil }
        self.fields = Array(parts.dropFirst())
    }

    /// The field at `index` as an integer, or nil.
    package func integer(_ index: Int) -> Int64? { fields.indices.contains(index) ? Int64(fields[index]) : nil }
}

import Foundation

/// A position in an index listing: the sort key of the last item of the previous page.
///
/// Clients see only the opaque ``token`` (base64url of a versioned JSON array); its form may change between versions.
package struct IndexCursor: Sendable, Equatable {
    /// The sort key's fields, in sort order.
    package var fields: [String]

    /// Creates a cursor that continues after the item with these sort-key fields.
    package init(_ fields: [String]) { self.fields = fields }

    /// The opaque text form.
    package var token: String {
        let data = (try? JSONEncoder().encode(["c1"] + fields)) ?? Data()
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Decodes a token made by ``token`` with exactly `arity` fields; nil for anything else.
    package init?(token: some StringProtocol, arity: Int) {
        guard token.utf8.count <= 4096 else { return nil }
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: base64),
            let parts = try? JSONDecoder().decode([String].self, from: data),
            parts.count == arity + 1, parts.first == "c1"
        else { return nil }
        self.fields = Array(parts.dropFirst())
    }

    /// The field at `index` as an integer, or nil.
    package func integer(_ index: Int) -> Int64? { fields.indices.contains(index) ? Int64(fields[index]) : nil }
}

import Foundation
import Hummingbird
import KubinModel

/// The query parameters of `/internal/api/v1`: each parsed, validated, and written back in a normal form for the
/// cache key (so `?b=1&a=2` and `?a=2&b=1` share an answer).
struct InternalParameters {
    private let query: [String: String]
    /// The parameters as parsed, sorted by name, for the cache key.
    private(set) var normalised: [String: String] = [:]

    /// The parameters of `request`; a repeated parameter is refused (which value would count is unclear).
    init(_ request: Request, allowed: Set<String>) throws {
        try RequestParameters.onlyAllowed(request, allowed)
        var query: [String: String] = [:]
        for (name, value) in request.uri.queryParameters { query[String(name)] = String(value) }
        self.query = query
    }

    /// The cache key of a view with these parameters.
    func cacheKey(_ view: String) -> String {
        view + "?" + normalised.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1F}")
    }

    /// A text parameter of 1 to 253 characters without control characters.
    mutating func text(_ name: String) throws -> String? {
        guard let value = query[name] else { return nil }
        guard (1...253).contains(value.count), !value.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw KubinError.invalidParameter(name, "expected 1 to 253 characters")
        }
        normalised[name] = value
        return value
    }

    /// A search text of 1 to 1024 characters.
    mutating func searchText(_ name: String) throws -> String? {
        guard let value = query[name] else { return nil }
        guard (1...1024).contains(value.count) else {
            throw KubinError.invalidParameter(name, "expected 1 to 1024 characters")
        }
        normalised[name] = value
        return value
    }

    /// `true` or `false`.
    mutating func boolean(_ name: String) throws -> Bool? {
        guard let value = query[name] else { return nil }
        guard let flag = ["true": true, "false": false][value] else {
            throw KubinError.invalidParameter(name, "expected true or false")
        }
        normalised[name] = value
        return flag
    }

    /// An RFC 3339 time, as microseconds since 1970.
    mutating func time(_ name: String) throws -> Int64? {
        guard let value = query[name] else { return nil }
        let date =
            (try? Date(value, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
            ?? (try? Date(value, strategy: Date.ISO8601FormatStyle()))
        guard let date else {
            throw KubinError.invalidParameter(name, "expected an RFC 3339 time such as 2024-05-01T12:00:00Z")
        }
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        normalised[name] = String(micros)
        return micros
    }

    /// A label selector.
    mutating func selector(_ name: String) throws -> LabelSelector? {
        guard let value = query[name] else { return nil }
        do {
            let selector = try LabelSelector(parsing: value)
            normalised[name] = selector.canonical
            return selector
        } catch {
            throw KubinError.invalidParameter(name, "not a label selector: \(error.message)")
        }
    }

    /// The page size, 1 to `maximum`.
    mutating func limit(default defaultValue: Int, maximum: Int) throws -> Int {
        var limit = defaultValue
        if let value = query["limit"] {
            guard let parsed = Int(value), (1...maximum).contains(parsed) else {
                throw KubinError.invalidParameter("limit", "expected a whole number from 1 to \(maximum)")
            }
            limit = parsed
        }
        normalised["limit"] = String(limit)
        return limit
    }

    /// The cursor of a listing whose sort key has `arity` fields.
    mutating func cursor(arity: Int) throws -> IndexCursor? {
        guard let value = query["cursor"] else { return nil }
        guard let cursor = IndexCursor(token: value, arity: arity) else {
            throw KubinError.invalidParameter("cursor", "expected the nextCursor of an earlier page of this listing")
        }
        normalised["cursor"] = value
        return cursor
    }

    /// The names every listing accepts.
    static let paging: Set<String> = ["limit", "cursor"]
}

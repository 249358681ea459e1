/// The `Range` request header for one byte range (RFC 9110, section 14), and entity-tag comparison.
enum ByteRange {
    /// What a `Range` header asks of an object of a given size.
    enum Request: Equatable {
        /// Send the whole object: no header, a malformed one, a unit other than bytes, or several ranges.
        case whole
        /// Send these bytes.
        case range(Range<Int64>)
        /// The one range requested lies outside the object.
        case unsatisfiable
    }

    /// Interprets `header` (`bytes=0-99`, `bytes=100-`, `bytes=-100`) for an object of `size` bytes.
    static func parse(_ header: String?, size: Int64) -> Request {
        guard let header, header.utf8.count <= 256 else { return .whole }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = trimmed.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces)
        let last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        guard first.allSatisfy(\.isASCIIDigit), last.allSatisfy(\.isASCIIDigit), first.count <= 18, last.count <= 18
        else { return .whole }
        switch (Int64(first), Int64(last)) {
        case (let start?, nil):
            return start < size ? .range(start..<size) : .unsatisfiable
        case (let start?, let end?):
            guard start <= end else { return .whole }
            return start < size ? .range(start..<min(end + 1, size)) : .unsatisfiable
        case (nil, let suffix?):
            return suffix > 0 && size > 0 ? .range(max(0, size - suffix)..<size) : .unsatisfiable
        case (nil, nil):
            return .whole
        }
    }

    /// True when an `If-None-Match` header value names `etag` (weak comparison) or is `*`.
    static func noneMatchHits(_ header: String, etag: String) -> Bool {
        header.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || (tag.hasPrefix("W/") ? String(tag.dropFirst(2)) : tag) == etag
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

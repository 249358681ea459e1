/// The `Range` request header for one byte range (RFC 9110, section 14), and entity-tag comparison.
///
/// One policy for every corner: a header that is not one valid `bytes` range (another unit, several ranges, a last
/// position before the first, anything but digits) is ignored and the whole object is sent, as §14.2 allows; a valid
/// range is honoured whatever its numbers, however many digits they have: a first position at or past the end is
/// unsatisfiable (416), a last position past the end is clamped to it (206).
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
        guard first.allSatisfy(\.isASCIIDigit), last.allSatisfy(\.isASCIIDigit) else { return .whole }
        // Digits beyond Int64 still name a position: one past the end of any object.
        let start = first.isEmpty ? nil : Int64(first) ?? .max
        let end = last.isEmpty ? nil : Int64(last) ?? .max
        switch (start, end) {
        case (let start?, nil):
            return start < size ? .range(start..<size) : .unsatisfiable
        case (let start?, let end?):
            guard start <= end else { return .whole }
            return start < size ? .range(start..<(min(end, size - 1) + 1)) : .unsatisfiable
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

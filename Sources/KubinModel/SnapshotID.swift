import Foundation

/// The identifier of one snapshot: a lowercase UUIDv7, so ids sort by creation time.
package struct SnapshotID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The canonical text form, for example `0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1f`.
    package let rawValue: String

    /// Accepts only the canonical lowercase UUID form; anything else is not an id this gateway issued.
    package init?(validating text: some StringProtocol) {
        guard text.utf8.count == 36, let uuid = UUID(uuidString: String(text)),
            uuid.uuidString.lowercased() == text
        else { return nil }
        self.rawValue = String(text)
    }

    private init(uncheckedRawValue: String) { self.rawValue = uncheckedRawValue }

    /// A new UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.
    package static func generate(at date: Date) -> SnapshotID {
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - index))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x70  // version 7
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 9562 variant
        let uuid = UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
        return SnapshotID(uncheckedRawValue: uuid.uuidString.lowercased())
    }

    package var description: String { rawValue }

    package static func < (lhs: SnapshotID, rhs: SnapshotID) -> Bool { lhs.rawValue < rhs.rawValue }
}

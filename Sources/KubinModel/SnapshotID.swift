import Foundation
import Synchronization

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

    fileprivate init(uncheckedRawValue: String) { self.rawValue = uncheckedRawValue }

    /// A new id from a generator shared by the process.
    package static func generate(at date: Date) -> SnapshotID { shared.next(at: date) }

    private static let shared = SnapshotIDGenerator()

    package var description: String { rawValue }

    package static func < (lhs: SnapshotID, rhs: SnapshotID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Makes UUIDv7 ids (RFC 9562): 48 bits of Unix milliseconds, a 12-bit counter, then random bits.
///
/// The ids of one generator strictly increase (RFC 9562, section 6.2, method 1): within one millisecond the counter
/// (started at a random value below 2048) goes up; a clock that steps back keeps the last millisecond.
package final class SnapshotIDGenerator: Sendable {
    private let last = Mutex<(millis: UInt64, counter: UInt16)>((0, 0))

    package init() {}

    /// The next id, for something created at `date`.
    package func next(at date: Date) -> SnapshotID {
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
        let (millis, counter) = last.withLock { state -> (UInt64, UInt16) in
            let now = UInt64(max(0, date.timeIntervalSince1970 * 1000))
            if now > state.millis {
                state = (now, UInt16.random(in: 0..<0x800))
            } else if state.counter < 0xFFF {
                state.counter += 1
            } else {
                state = (state.millis + 1, 0)
            }
            return state
        }
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - index))) }
        bytes[6] = 0x70 | UInt8(counter >> 8)  // version 7, the counter's high 4 bits
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 9562 variant
        let uuid = UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
                bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            ))
        return SnapshotID(uncheckedRawValue: uuid.uuidString.lowercased())
    }
}

/// Bounds against decompression bombs, applied to everything an archive expands to.
package struct ExpansionLimits: Sendable {
    /// The most uncompressed bytes one snapshot may expand to.
    package var maxBytes: Int64 = 32 << 30
    /// The highest uncompressed-to-compressed ratio tolerated once `ratioGraceBytes` have come out.
    package var maxRatio: Int64 = 200
    /// Output allowed before the ratio is checked (small archives of repetitive text compress very well).
    package var ratioGraceBytes: Int64 = 256 << 20

    package init() {}

    /// Throws when `produced` bytes out of `consumed` compressed ones break a limit.
    func check(produced: Int64, consumed: Int64) throws {
        guard produced <= maxBytes else {
            throw ArchiveError(
                .limitExceeded, "The archive expands to more than \(maxBytes) bytes, the limit for one snapshot.")
        }
        guard produced <= ratioGraceBytes || produced / max(consumed, 1) <= maxRatio else {
            throw ArchiveError(
                .limitExceeded,
                "The archive expands more than \(maxRatio) times its compressed size, like a decompression bomb.")
        }
    }
}

import KubinModel

/// Decides an upload's container format from its first bytes.
package enum FormatSniffer {
    /// What the bytes seen so far say.
    package enum Verdict: Equatable, Sendable {
        /// The format is known.
        case format(SnapshotFormat)
        /// These bytes start no accepted format.
        case unsupported
        /// Too few bytes to tell yet.
        case needMoreBytes
    }

    /// How many leading whitespace bytes a JSON upload may have before its first `{` or `[`.
    package static let maxLeadingWhitespace = 4096

    /// Classifies `prefix`, the first bytes of an upload (all of them when `isComplete`).
    package static func classify(_ prefix: some Collection<UInt8>, isComplete: Bool) -> Verdict {
        let bytes = Array(prefix.prefix(maxLeadingWhitespace + 4))
        if bytes.starts(with: [0x1F, 0x8B]) { return .format(.gzip) }
        // Local file header, empty archive (end of central directory), or spanned-archive marker.
        for magic: [UInt8] in [[0x50, 0x4B, 0x03, 0x04], [0x50, 0x4B, 0x05, 0x06], [0x50, 0x4B, 0x07, 0x08]]
        where bytes.starts(with: magic) {
            return .format(.zip)
        }
        if bytes.count < 4, !isComplete, zipOrGzipCouldStart(bytes) { return .needMoreBytes }
        var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0  // UTF-8 byte order mark
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        if index < bytes.count {
            return bytes[index] == UInt8(ascii: "{") || bytes[index] == UInt8(ascii: "[")
                ? .format(.json) : .unsupported
        }
        return isComplete || index > maxLeadingWhitespace ? .unsupported : .needMoreBytes
    }

    private static func zipOrGzipCouldStart(_ bytes: [UInt8]) -> Bool {
        bytes.isEmpty || [0x1F, 0x50].contains(bytes[0]) && (bytes.count < 2 || bytes[1] == 0x4B || bytes[1] == 0x8B)
    }
}

/// The name of the cluster a snapshot was taken from, as the uploader calls it.
///
/// 1 to 128 characters of ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit: that covers
/// Kubernetes context names and DNS names while keeping the value safe in paths, logs and metric labels.
package struct ClusterName: Hashable, Sendable, CustomStringConvertible {
    /// The validated name.
    package let rawValue: String

    /// The longest name accepted.
    package static let maxLength = 128

    /// What a valid name looks like, for error messages.
    package static let rule =
        "1 to 128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"

    /// Returns nil when `text` breaks ``rule``.
    package init?(validating text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= Self.maxLength, Self.isAlphanumeric(first),
            bytes.allSatisfy({
                Self.isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_")
                    || $0 == UInt8(ascii: "-")
            })
        else { return nil }
        self.rawValue = String(text)
    }

    package var description: String { rawValue }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

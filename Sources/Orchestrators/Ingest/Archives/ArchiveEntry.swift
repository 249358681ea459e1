import NIOCore

/// One file or directory of an archive (tar or zip), after the safety checks.
package struct ArchiveEntry: Sendable, Equatable {
    /// What the entry is.
    package enum Kind: Sendable, Equatable { case file, directory }

    /// The path inside the archive, `/`-separated, without a leading `./`; never absolute, never with `..`.
    package var path: String
    /// File or directory.
    package var kind: Kind
    /// The body's size in bytes (0 for a directory).
    package var size: Int64

    package init(path: String, kind: Kind, size: Int64) {
        self.path = path
        self.kind = kind
        self.size = size
    }

    /// `path` normalised: backslashes read as `/`, `.` segments and a leading `./` dropped. Refuses absolute paths and
    /// `..` segments (an archive must not write outside itself).
    static func safePath(_ path: String) throws -> String {
        let normalised = path.replacingOccurrences(of: "\\", with: "/")
        guard !normalised.contains("\0") else {
            throw ArchiveError(
                .refusedEntry,
                "The archive contains a path with a NUL byte ('\(printable(path))'), which is not allowed.")
        }
        guard !normalised.hasPrefix("/"),
            !(normalised.count >= 2 && normalised.dropFirst().first == ":")  // a Windows drive letter
        else {
            throw ArchiveError(
                .refusedEntry, "The archive contains an absolute path ('\(printable(path))'), which is not allowed.")
        }
        let segments = normalised.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !segments.contains("..") else {
            throw ArchiveError(
                .refusedEntry, "The archive contains a path with '..' ('\(printable(path))'), which is not allowed.")
        }
        return segments.joined(separator: "/")
    }

    /// `text` shortened and stripped of control characters, for error messages.
    static func printable(_ text: String) -> String {
        String(
            String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) }).prefix(200))
    }
}

/// The body of the current archive entry, read in order; valid only while its visitor runs.
package protocol ArchiveEntryBody: AnyObject {
    /// The next piece of the body, at most `limit` bytes; nil at its end.
    func next(upTo limit: Int) async throws -> ByteBuffer?
}

extension ArchiveEntryBody {
    /// The whole body, refused when it is larger than `maxBytes`.
    package func collect(maxBytes: Int) async throws -> ByteBuffer {
        var all = ByteBuffer()
        while var chunk = try await next(upTo: 1 << 20) {
            guard all.readableBytes + chunk.readableBytes <= maxBytes else {
                throw ArchiveError(
                    .limitExceeded, "A document of the archive is larger than the limit of \(maxBytes) bytes.")
            }
            all.writeBuffer(&chunk)
        }
        return all
    }
}

import NIOCore

/// A streaming reader of tar archives: POSIX ustar, pax extended headers (`x`) and GNU long names (`L`, `K`), sizes in
/// octal or base-256. Written here because no Swift tar library is in the package mirror.
///
/// Entries are visited in order; their bodies stream through ``TarEntryBody`` and whatever a visitor leaves unread is
/// skipped, so memory stays bounded by one record. Entries a snapshot never needs and that could be dangerous are
/// refused, failing the whole archive: absolute paths, `..` segments, hard and symbolic links, devices and FIFOs.
package enum TarReader {
    /// Bounds on what an archive may ask the reader to hold.
    package struct Limits: Sendable {
        /// The most entries (files and directories) in one archive.
        package var maxEntries = 200_000
        /// The largest pax extended header or GNU long name, in bytes.
        package var maxMetadataBytes = 1 << 20

        package init() {}
    }

    /// Reads every entry of the archive in `stream`, calling `visit` with each file and directory.
    package static func read<Source>(
        _ stream: ByteStream<Source>, limits: Limits = Limits(),
        visit: (ArchiveEntry, TarEntryBody<Source>) async throws -> Void
    ) async throws {
        var pending = PendingMetadata()
        var entries = 0
        while let block = try await stream.read(exactly: 512) {
            let header = Array(block.readableBytesView)
            if header.allSatisfy({ $0 == 0 }) { return }  // end-of-archive marker
            try verifyChecksum(header)
            var size = try number(header[124..<136], field: "size")
            let type = header[156]
            let recordBytes = { (size: Int64) in (size + 511) / 512 * 512 }
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
                guard size <= Int64(limits.maxMetadataBytes) else {
                    throw ArchiveError(
                        .limitExceeded, "A tar metadata record is larger than \(limits.maxMetadataBytes) bytes.")
                }
                guard let data = try await stream.read(exactly: Int(recordBytes(size))) else {
                    throw ArchiveError(.corrupt, "The archive ends in the middle of an entry (it is truncated).")
                }
                let bytes = Array(data.readableBytesView.prefix(Int(size)))
                switch type {
                case UInt8(ascii: "x"): try pending.apply(paxRecords: bytes)
                case UInt8(ascii: "L"): pending.path = cString(bytes[...])
                case UInt8(ascii: "K"): pending.linkPath = cString(bytes[...])
                default: break  // a global pax header carries nothing a snapshot needs
                }
                continue
            default:
                break
            }
            var path = pending.path ?? ustarPath(header)
            if let paxSize = pending.size { size = paxSize }
            let linkTarget = pending.linkPath ?? cString(header[157..<257])
            pending = PendingMetadata()

            let kind: ArchiveEntry.Kind
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "1"), UInt8(ascii: "2"):
                throw ArchiveError(
                    .refusedEntry,
                    "The archive contains a link ('\(ArchiveEntry.printable(path))' -> '\(ArchiveEntry.printable(linkTarget))'); "
                        + "links are not allowed in a snapshot.")
            case UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "6"):
                throw ArchiveError(
                    .refusedEntry,
                    "The archive contains a device or FIFO ('\(ArchiveEntry.printable(path))'), which is not allowed."
                )
            default:
                throw ArchiveError(
                    .refusedEntry,
                    "The archive contains an entry of unsupported type '\(ArchiveEntry.printable(String(decoding: [type], as: UTF8.self)))' "
                        + "('\(ArchiveEntry.printable(path))').")
            }
            path = try ArchiveEntry.safePath(path)
            entries += 1
            guard entries <= limits.maxEntries else {
                throw ArchiveError(.limitExceeded, "The archive has more than \(limits.maxEntries) entries.")
            }
            let dataSize = kind == .directory ? 0 : size
            let body = TarEntryBody(stream: stream, remaining: dataSize)
            if !path.isEmpty {
                try await visit(ArchiveEntry(path: path, kind: kind, size: dataSize), body)
            }
            try await stream.skip(body.remaining + (recordBytes(dataSize) - dataSize))
        }
    }

    /// Metadata records that apply to the next entry.
    private struct PendingMetadata {
        var path: String?
        var linkPath: String?
        var size: Int64?

        /// Applies pax records: `"<length> <key>=<value>\n"`, repeated.
        mutating func apply(paxRecords bytes: [UInt8]) throws {
            var index = 0
            while index < bytes.count {
                guard let space = bytes[index...].firstIndex(of: UInt8(ascii: " ")),
                    let length = Int(String(decoding: bytes[index..<space], as: UTF8.self)), length > space - index,
                    index + length <= bytes.count, bytes[index + length - 1] == UInt8(ascii: "\n"),
                    let equals = bytes[(space + 1)..<(index + length)].firstIndex(of: UInt8(ascii: "="))
                else {
                    throw ArchiveError(.corrupt, "A pax extended header of the archive is malformed.")
                }
                let key = String(decoding: bytes[(space + 1)..<equals], as: UTF8.self)
                let value = String(decoding: bytes[(equals + 1)..<(index + length - 1)], as: UTF8.self)
                switch key {
                case "path": path = value
                case "linkpath": linkPath = value
                case "size":
                    guard let parsed = Int64(value), parsed >= 0 else {
                        throw ArchiveError(.corrupt, "A pax extended header of the archive has an invalid size.")
                    }
                    size = parsed
                default: break
                }
                index += length
            }
        }
    }

    /// The name of a ustar header, with its `prefix` when the header is POSIX ustar.
    private static func ustarPath(_ header: [UInt8]) -> String {
        let name = cString(header[0..<100])
        let isPOSIX = header[257..<263].elementsEqual(Array("ustar\0".utf8))
        let prefix = isPOSIX ? cString(header[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// The header's checksum must match the sum of its bytes, the checksum field counted as spaces (unsigned, or
    /// signed as some old writers computed it).
    private static func verifyChecksum(_ header: [UInt8]) throws {
        let stored = try number(header[148..<156], field: "checksum")
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let value = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        guard stored == unsigned || stored == signed else {
            throw ArchiveError(
                .corrupt, "A tar header's checksum does not match: the archive is damaged or is not a tar.")
        }
    }

    /// An octal number field (NUL or space terminated), or a base-256 one when its first byte has the high bit set.
    private static func number(_ field: ArraySlice<UInt8>, field name: String) throws -> Int64 {
        if let first = field.first, first & 0x80 != 0 {
            var bytes = Array(field)
            bytes[0] &= 0x7F  // the marker bit; the rest is a big-endian number
            guard bytes.dropLast(8).allSatisfy({ $0 == 0 }), bytes.suffix(8).first.map({ $0 & 0x80 == 0 }) ?? true
            else { throw ArchiveError(.corrupt, "A tar header's \(name) is too large.") }
            return bytes.suffix(8).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        }
        let digits = field.drop { $0 == UInt8(ascii: " ") }.prefix { $0 != 0 && $0 != UInt8(ascii: " ") }
        guard !digits.isEmpty || field.allSatisfy({ $0 == 0 || $0 == UInt8(ascii: " ") }) else {
            throw ArchiveError(
                .corrupt, "A tar header's \(name) is not a number: the archive is damaged or is not a tar.")
        }
        var value: Int64 = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(digit), value < Int64.max >> 3 else {
                throw ArchiveError(
                    .corrupt, "A tar header's \(name) is not an octal number: the archive is damaged or is not a tar.")
            }
            value = value << 3 | Int64(digit - UInt8(ascii: "0"))
        }
        return value
    }

    private static func cString(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

}

/// The body of the current tar entry; readable only while its visitor runs.
package final class TarEntryBody<Source: AsyncIteratorProtocol>: ArchiveEntryBody where Source.Element == ByteBuffer {
    private let stream: ByteStream<Source>
    /// Bytes of the body not read yet.
    package private(set) var remaining: Int64

    init(stream: ByteStream<Source>, remaining: Int64) {
        self.stream = stream
        self.remaining = remaining
    }

    /// The next piece of the body, at most `limit` bytes; nil at its end.
    package func next(upTo limit: Int = 64 * 1024) async throws -> ByteBuffer? {
        guard remaining > 0 else { return nil }
        guard let chunk = try await stream.readChunk(upTo: Int(min(Int64(limit), remaining))) else {
            throw ArchiveError(.corrupt, "The archive ends in the middle of an entry (it is truncated).")
        }
        remaining -= Int64(chunk.readableBytes)
        return chunk
    }
}

import CompressNIO
import NIOCore

/// A reader of zip archives over ranged reads: the end-of-central-directory record, the central directory, then each
/// entry's data, stored or deflated, with zip64 sizes and offsets.
///
/// Written here rather than using ZIPFoundation (in the mirror at 0.9.20): on Linux its inflate loop never ends on
/// some damaged or crafted input, and it does not cap an entry's output at its declared size. This reader refuses
/// encrypted entries, links and special files, unsafe paths and overlapping entries (a bomb technique); caps each
/// entry at its declared size, checks its CRC-32, and applies ``ExpansionLimits`` to the whole archive.
package enum ZipReader {
    /// Bounds on the archive's directory.
    package struct Limits: Sendable {
        /// The most entries in one archive.
        package var maxEntries = 200_000
        /// The largest central directory read into memory.
        package var maxDirectoryBytes = 64 << 20

        package init() {}
    }

    /// What the central directory says about one entry.
    struct DirectoryRecord {
        var path: String
        var kind: ArchiveEntry.Kind
        var method: UInt16
        var crc: UInt32
        var compressedSize: Int64
        var uncompressedSize: Int64
        var localHeaderOffset: Int64
    }

    /// Reads every entry of `source` in the order of their data, calling `visit` with each file and directory.
    package static func read(
        _ source: some RandomAccessBytes, limits: Limits = Limits(), expansion: ExpansionLimits = .init(),
        visit: (ArchiveEntry, ZipEntryBody) async throws -> Void
    ) async throws {
        let (records, directoryOffset) = try await directory(of: source, limits: limits)
        let tally = ExpansionTally(limits: expansion)
        var previousEnd: Int64 = 0
        for record in records.sorted(by: { $0.localHeaderOffset < $1.localHeaderOffset }) {
            let local = try await source.read(try range(record.localHeaderOffset, 30, within: source.size))
            let header = Array(local.readableBytesView)
            guard le32(header, 0) == 0x0403_4B50 else {
                throw ArchiveError(.corrupt, "A zip entry's local header is missing: the archive is damaged.")
            }
            let dataStart = record.localHeaderOffset + 30 + Int64(le16(header, 26)) + Int64(le16(header, 28))
            let dataEnd = dataStart + record.compressedSize
            guard record.localHeaderOffset >= previousEnd, dataEnd <= directoryOffset else {
                throw ArchiveError(
                    .refusedEntry, "The zip archive's entries overlap (a decompression-bomb technique); refused.")
            }
            previousEnd = dataEnd
            guard record.kind == .file else {
                try await visit(ArchiveEntry(path: record.path, kind: .directory, size: 0), ZipEntryBody.empty)
                continue
            }
            let body = try ZipEntryBody(source: source, record: record, dataStart: dataStart, tally: tally)
            try await visit(ArchiveEntry(path: record.path, kind: .file, size: record.uncompressedSize), body)
        }
    }

    /// The central directory's records and where it starts.
    static func directory(
        of source: some RandomAccessBytes, limits: Limits
    ) async throws
        -> (records: [DirectoryRecord], offset: Int64)
    {
        let tailStart = max(0, source.size - 22 - 65_535)
        let tail = Array(try await source.read(tailStart..<source.size).readableBytesView)
        guard let end = endOfDirectory(in: tail) else {
            throw ArchiveError(.corrupt, "The zip archive has no central directory: it is truncated or not a zip.")
        }
        guard le16(tail, end + 4) == 0, le16(tail, end + 6) == 0 else {
            throw ArchiveError(.refusedEntry, "Multi-part zip archives are not supported.")
        }
        var count = Int64(le16(tail, end + 10))
        var size = Int64(le32(tail, end + 12))
        var offset = Int64(le32(tail, end + 16))
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            (count, size, offset) = try await zip64EndOfDirectory(source, locatorAt: tailStart + Int64(end) - 20)
        }
        guard count <= Int64(limits.maxEntries) else {
            throw ArchiveError(.limitExceeded, "The archive has more than \(limits.maxEntries) entries.")
        }
        guard size <= Int64(limits.maxDirectoryBytes) else {
            throw ArchiveError(
                .limitExceeded, "The zip archive's directory is larger than \(limits.maxDirectoryBytes) bytes.")
        }
        let bytes = Array(try await source.read(try range(offset, size, within: source.size)).readableBytesView)
        var records: [DirectoryRecord] = []
        var index = 0
        for _ in 0..<count {
            guard index + 46 <= bytes.count, le32(bytes, index) == 0x0201_4B50 else {
                throw ArchiveError(.corrupt, "The zip archive's central directory is damaged.")
            }
            let nameLength = Int(le16(bytes, index + 28))
            let extraLength = Int(le16(bytes, index + 30))
            let commentLength = Int(le16(bytes, index + 32))
            let next = index + 46 + nameLength + extraLength + commentLength
            guard next <= bytes.count else {
                throw ArchiveError(.corrupt, "The zip archive's central directory is damaged.")
            }
            records.append(try record(bytes, at: index, nameLength: nameLength, extraLength: extraLength))
            index = next
        }
        return (records, offset)
    }

    private static func record(
        _ bytes: [UInt8], at index: Int, nameLength: Int, extraLength: Int
    ) throws
        -> DirectoryRecord
    {
        let flags = le16(bytes, index + 8)
        let rawName = String(decoding: bytes[(index + 46)..<(index + 46 + nameLength)], as: UTF8.self)
        guard flags & 1 == 0 else {
            throw ArchiveError(
                .refusedEntry,
                "The zip archive has an encrypted entry ('\(ArchiveEntry.printable(rawName))'); "
                    + "encrypted archives are not supported.")
        }
        var uncompressed = Int64(le32(bytes, index + 24))
        var compressed = Int64(le32(bytes, index + 20))
        var offset = Int64(le32(bytes, index + 42))
        // Zip64: the fields set to all ones are in the extra field 0x0001, in this order.
        var extra = index + 46 + nameLength
        let extraEnd = extra + extraLength
        while extra + 4 <= extraEnd {
            let id = le16(bytes, extra)
            let length = Int(le16(bytes, extra + 2))
            guard extra + 4 + length <= extraEnd else { break }
            if id == 0x0001 {
                var field = extra + 4
                let fieldEnd = field + length
                func wide() -> Int64? {
                    guard field + 8 <= fieldEnd else { return nil }
                    defer { field += 8 }
                    return Int64(le32(bytes, field)) | Int64(le32(bytes, field + 4)) << 32
                }
                if uncompressed == 0xFFFF_FFFF, let value = wide() { uncompressed = value }
                if compressed == 0xFFFF_FFFF, let value = wide() { compressed = value }
                if offset == 0xFFFF_FFFF, let value = wide() { offset = value }
            }
            extra += 4 + length
        }
        guard uncompressed >= 0, compressed >= 0, offset >= 0 else {
            throw ArchiveError(.corrupt, "The zip archive's central directory is damaged.")
        }
        let madeBy = le16(bytes, index + 4) >> 8
        let mode = (madeBy == 3 || madeBy == 19) ? le32(bytes, index + 38) >> 16 : 0
        let kind: ArchiveEntry.Kind
        switch mode & 0o170000 {
        case 0o120000:
            throw ArchiveError(
                .refusedEntry,
                "The archive contains a link ('\(ArchiveEntry.printable(rawName))'); "
                    + "links are not allowed in a snapshot.")
        case 0o020000, 0o060000, 0o010000, 0o140000:
            throw ArchiveError(
                .refusedEntry,
                "The archive contains a device, FIFO or socket ('\(ArchiveEntry.printable(rawName))'), which is not allowed."
            )
        case 0o040000: kind = .directory
        default: kind = rawName.hasSuffix("/") ? .directory : .file
        }
        return DirectoryRecord(
            path: try ArchiveEntry.safePath(rawName), kind: kind, method: le16(bytes, index + 10),
            crc: le32(bytes, index + 16), compressedSize: compressed,
            uncompressedSize: kind == .file ? uncompressed : 0,
            localHeaderOffset: offset)
    }

    /// The position of the end-of-central-directory record in `tail`, searching from the end.
    private static func endOfDirectory(in tail: [UInt8]) -> Int? {
        guard tail.count >= 22 else { return nil }
        for position in stride(from: tail.count - 22, through: 0, by: -1)
        where le32(tail, position) == 0x0605_4B50 && position + 22 + Int(le16(tail, position + 20)) <= tail.count {
            return position
        }
        return nil
    }

    private static func zip64EndOfDirectory(
        _ source: some RandomAccessBytes, locatorAt locator: Int64
    ) async throws
        -> (count: Int64, size: Int64, offset: Int64)
    {
        let locatorBytes = Array(try await source.read(try range(locator, 20, within: source.size)).readableBytesView)
        guard le32(locatorBytes, 0) == 0x0706_4B50 else {
            throw ArchiveError(.corrupt, "The zip64 archive's directory locator is missing: the archive is damaged.")
        }
        let recordOffset = Int64(le32(locatorBytes, 8)) | Int64(le32(locatorBytes, 12)) << 32
        let record = Array(try await source.read(try range(recordOffset, 56, within: source.size)).readableBytesView)
        guard le32(record, 0) == 0x0606_4B50 else {
            throw ArchiveError(.corrupt, "The zip64 archive's directory record is missing: the archive is damaged.")
        }
        func wide(_ at: Int) -> Int64 { Int64(le32(record, at)) | Int64(le32(record, at + 4)) << 32 }
        return (wide(32), wide(40), wide(48))
    }

    /// `offset..<offset+length`, refused when it is not inside `0..<size`.
    static func range(_ offset: Int64, _ length: Int64, within size: Int64) throws -> Range<Int64> {
        guard offset >= 0, length >= 0, offset <= size, length <= size - offset else {
            throw ArchiveError(.corrupt, "The zip archive points outside itself: it is damaged or truncated.")
        }
        return offset..<(offset + length)
    }

    static func le16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    static func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
}

/// What a whole archive has expanded to so far, against ``ExpansionLimits``.
final class ExpansionTally {
    private let limits: ExpansionLimits
    private var produced: Int64 = 0
    private var consumed: Int64 = 0

    init(limits: ExpansionLimits) { self.limits = limits }

    func add(produced newOutput: Int, consumed newInput: Int) throws {
        produced += Int64(newOutput)
        consumed += Int64(newInput)
        try limits.check(produced: produced, consumed: consumed)
    }
}

/// The body of one zip entry: its data read in ranges, inflated when deflated, held to its declared size and CRC-32.
package final class ZipEntryBody: ArchiveEntryBody {
    private let source: (any RandomAccessBytes)?
    private let record: ZipReader.DirectoryRecord
    private var position: Int64
    private var remainingInput: Int64
    private let inflater: ZlibDecompressor?
    private let tally: ExpansionTally?
    private var input = ByteBuffer()
    private var produced: Int64 = 0
    private var crc = CRC32()
    private var isFinished = false

    /// A body with no bytes, for directories.
    static var empty: ZipEntryBody { ZipEntryBody() }

    private init() {
        source = nil
        record = .init(
            path: "", kind: .directory, method: 0, crc: 0, compressedSize: 0, uncompressedSize: 0, localHeaderOffset: 0)
        position = 0
        remainingInput = 0
        inflater = nil
        tally = nil
        isFinished = true
    }

    init(
        source: some RandomAccessBytes, record: ZipReader.DirectoryRecord, dataStart: Int64, tally: ExpansionTally
    ) throws {
        self.source = source
        self.record = record
        self.position = dataStart
        self.remainingInput = record.compressedSize
        self.tally = tally
        switch record.method {
        case 0:
            guard record.compressedSize == record.uncompressedSize else {
                throw ArchiveError(.corrupt, "A stored zip entry's sizes disagree: the archive is damaged.")
            }
            inflater = nil
        case 8:
            inflater = try ZlibDecompressor(algorithm: .deflate)
        default:
            throw ArchiveError(
                .refusedEntry,
                "The zip entry '\(ArchiveEntry.printable(record.path))' uses compression method \(record.method); "
                    + "only stored and deflated entries are supported.")
        }
    }

    package func next(upTo limit: Int) async throws -> ByteBuffer? {
        guard !isFinished, let source else { return nil }
        let chunk: ByteBuffer?
        if let inflater {
            chunk = try await inflate(inflater, source: source, limit: limit)
        } else {
            chunk = remainingInput > 0 ? try await readInput(source, upTo: limit) : nil
        }
        guard let chunk else {
            try finish()
            return nil
        }
        produced += Int64(chunk.readableBytes)
        guard produced <= record.uncompressedSize else {
            throw ArchiveError(
                .corrupt, "The zip entry '\(ArchiveEntry.printable(record.path))' expands beyond its declared size.")
        }
        chunk.withUnsafeReadableBytes { crc.update($0) }
        try tally?.add(produced: chunk.readableBytes, consumed: 0)
        return chunk
    }

    private func readInput(_ source: any RandomAccessBytes, upTo limit: Int) async throws -> ByteBuffer {
        let length = min(Int64(limit), remainingInput)
        let chunk = try await source.read(position..<(position + length))
        guard chunk.readableBytes == Int(length) else {
            throw ArchiveError(.corrupt, "The zip archive ends in the middle of an entry (it is truncated).")
        }
        position += length
        remainingInput -= length
        try tally?.add(produced: 0, consumed: Int(length))
        return chunk
    }

    /// The next inflated chunk, or nil at the end of the deflate stream.
    private func inflate(
        _ inflater: ZlibDecompressor, source: any RandomAccessBytes, limit: Int
    ) async throws
        -> ByteBuffer?
    {
        var output = ByteBufferAllocator().buffer(capacity: max(1024, limit))
        while true {
            if input.readableBytes == 0, remainingInput > 0 {
                input = try await readInput(source, upTo: 256 * 1024)
            }
            let before = output.readableBytes
            do {
                try inflater.inflate(from: &input, to: &output)
                if output.readableBytes > before { return output }
                // No progress and nothing more to give: the stream has ended, or it is cut short.
                if input.readableBytes > 0 || remainingInput == 0 { return nil }
            } catch let error as CompressNIOError where error == .bufferOverflow {
                return output
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                guard remainingInput > 0 else {
                    throw ArchiveError(
                        .corrupt, "The zip entry '\(ArchiveEntry.printable(record.path))' ends early: it is truncated.")
                }
            } catch {
                throw ArchiveError(
                    .corrupt, "The zip entry '\(ArchiveEntry.printable(record.path))' is corrupt (\(error)).")
            }
        }
    }

    private func finish() throws {
        isFinished = true
        guard produced == record.uncompressedSize, crc.value == record.crc else {
            throw ArchiveError(
                .corrupt,
                "The zip entry '\(ArchiveEntry.printable(record.path))' does not match its size or CRC-32: "
                    + "the archive is damaged.")
        }
    }
}

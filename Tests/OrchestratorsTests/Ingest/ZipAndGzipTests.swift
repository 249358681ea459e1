import Foundation
import NIOCore
import TestSupport
import Testing

@testable import Orchestrators

/// Bytes in memory as a ranged source.
struct MemoryBytes: RandomAccessBytes {
    let bytes: [UInt8]
    var size: Int64 { Int64(bytes.count) }
    func read(_ range: Range<Int64>) async throws -> ByteBuffer {
        ByteBuffer(bytes: bytes[Int(range.lowerBound)..<Int(range.upperBound)])
    }
}

func readZip(
    _ archive: [UInt8], expansion: ExpansionLimits = .init()
) async throws -> [(entry: ArchiveEntry, body: [UInt8])] {
    var result: [(ArchiveEntry, [UInt8])] = []
    try await ZipReader.read(MemoryBytes(bytes: archive), expansion: expansion) { entry, body in
        var bytes: [UInt8] = []
        while let chunk = try await body.next(upTo: 999) { bytes += chunk.readableBytesView }
        result.append((entry, bytes))
    }
    return result
}

func gunzip(
    _ compressed: [UInt8], chunkSizes: [Int] = [1000], limits: ExpansionLimits = .init()
) async throws -> [UInt8] {
    var output: [UInt8] = []
    for try await chunk in Gunzip(chunked(compressed, sizes: chunkSizes).async, limits: limits, chunkSize: 4096) {
        output += chunk.readableBytesView
    }
    return output
}

@Suite struct CRC32Tests {
    @Test func matchesTheStandardCheckValueAndZlib() throws {
        var crc = CRC32()
        Array("123456789".utf8).withUnsafeBytes { crc.update($0) }
        #expect(crc.value == 0xCBF4_3926)
        let data = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var split = CRC32()
        data[..<5000].withUnsafeBytes { split.update($0) }
        data[5000...].withUnsafeBytes { split.update($0) }
        let expected = String(
            decoding: try python(
                "import zlib,sys; sys.stdout.write(str(zlib.crc32(bytes((i * 31 + 7) % 256 for i in range(100003)))))"),
            as: UTF8.self)
        #expect(String(split.value) == expected)
    }
}

@Suite struct GunzipTests {
    @Test func decompressesAnyChunkingAndConcatenatedMembers() async throws {
        let original = Array((0..<200_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
        let twoMembers = try python(
            "import gzip,sys; d=bytes(i % 251 for i in range(200000)); sys.stdout.buffer.write(gzip.compress(d[:70000]) + gzip.compress(d[70000:]))"
        )
        for sizes in [[1], [7, 13], [1000], [65536], [1 << 20]] {
            #expect(try await gunzip(twoMembers, chunkSizes: sizes) == original, "\(sizes)")
        }
        let withTrailingGarbage = try python(
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(b'hello') + b'\\n')")
        #expect(try await gunzip(withTrailingGarbage, chunkSizes: [3]) == Array("hello".utf8))
    }

    @Test func truncatedAndCorruptStreamsFail() async throws {
        let compressed = try python("import gzip,sys,os; sys.stdout.buffer.write(gzip.compress(os.urandom(50000)))")
        for cut in [10, 100, compressed.count / 2, compressed.count - 4] {
            await #expect { _ = try await gunzip(Array(compressed.prefix(cut))) } throws: {
                ($0 as? ArchiveError)?.kind == .corrupt
            }
        }
        var damaged = compressed
        damaged[damaged.count / 2] ^= 0xFF
        await #expect { _ = try await gunzip(damaged) } throws: { ($0 as? ArchiveError)?.kind == .corrupt }
    }

    @Test func bombsHitTheLimits() async throws {
        let bomb = try python("import gzip,sys; sys.stdout.buffer.write(gzip.compress(bytes(20_000_000), 9))")
        var limits = ExpansionLimits()
        limits.maxBytes = 5_000_000
        await #expect { _ = try await gunzip(bomb, limits: limits) } throws: {
            ($0 as? ArchiveError)?.reason.contains("more than 5000000 bytes") == true
        }
        limits = ExpansionLimits()
        limits.ratioGraceBytes = 1_000_000
        limits.maxRatio = 100
        await #expect { _ = try await gunzip(bomb, limits: limits) } throws: {
            ($0 as? ArchiveError)?.reason.contains("decompression bomb") == true
        }
    }
}

@Suite struct ZipReaderTests {
    static let writer = """
        import io, sys, zipfile
        def zip_of(entries, **options):
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", **options) as archive:
                for name, data, kind in entries:
                    info = zipfile.ZipInfo(name, date_time=(2022, 11, 29, 20, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED if kind == "deflate" else zipfile.ZIP_STORED
                    if kind == "symlink": info.create_system = 3; info.external_attr = 0o120777 << 16
                    if kind == "fifo": info.create_system = 3; info.external_attr = 0o010644 << 16
                    archive.writestr(info, data)
            return buffer.getvalue()

        """

    @Test func readsStoredDeflatedDirectoriesAndZip64() async throws {
        let archive = try python(
            Self.writer + """
                entries = [("dump/nodes.json", b'{"kind":"NodeList"}' * 100, "deflate"), ("dump/ns/", b"", "stored"),
                           ("dump/ns/logs.txt", bytes(range(256)) * 40, "stored"), ("dump/ü-名.json", b"{}", "deflate")]
                buffer = io.BytesIO()
                with zipfile.ZipFile(buffer, "w") as archive:
                    for name, data, kind in entries:
                        info = zipfile.ZipInfo(name); info.compress_type = zipfile.ZIP_DEFLATED if kind == "deflate" else zipfile.ZIP_STORED
                        with archive.open(info, "w", force_zip64=True) as entry: entry.write(data)
                sys.stdout.buffer.write(buffer.getvalue())
                """)
        let read = try await readZip(archive)
        #expect(read.map(\.entry.path) == ["dump/nodes.json", "dump/ns", "dump/ns/logs.txt", "dump/ü-名.json"])
        #expect(read[0].body == Array(String(repeating: #"{"kind":"NodeList"}"#, count: 100).utf8))
        #expect(read[1].entry.kind == .directory && read[1].body.isEmpty)
        #expect(read[2].body == Array((0..<10240).map { UInt8($0 % 256) }))
        #expect(read[3].entry.size == 2)
    }

    @Test(arguments: [
        ("/etc/passwd", "stored", "absolute path"), ("dump/../../evil", "stored", "'..'"),
        ("dump/link", "symlink", "link"), ("dump/fifo", "fifo", "device, FIFO"),
    ])
    func refusesDangerousEntries(_ name: String, _ kind: String, _ words: String) async throws {
        let archive = try python(
            Self.writer
                + "sys.stdout.buffer.write(zip_of([('dump/a.json', b'{}', 'stored'), ('\(name)', b'x', '\(kind)')]))")
        await #expect { _ = try await readZip(archive) } throws: {
            ($0 as? ArchiveError)?.kind == .refusedEntry && ($0 as? ArchiveError)?.reason.contains(words) == true
        }
    }

    @Test func refusesEncryptedAndOverlappingEntries() async throws {
        var archive = try python(
            Self.writer + "sys.stdout.buffer.write(zip_of([('dump/a.json', b'{}' * 10, 'stored')]))")
        // Set the "encrypted" flag in the central directory record.
        let directory = try #require(find([0x50, 0x4B, 0x01, 0x02], in: archive))
        archive[directory + 8] |= 1
        await #expect { _ = try await readZip(archive) } throws: {
            ($0 as? ArchiveError)?.reason.contains("encrypted") == true
        }

        // Two directory records pointing at the same data: the classic overlapping-entries bomb.
        let overlapping = try python(
            Self.writer + """
                data = zip_of([("a", b"A" * 1000, "deflate")])
                eocd = data.rindex(b"PK\\x05\\x06"); cd_offset = int.from_bytes(data[eocd+16:eocd+20], "little")
                cd = data[cd_offset:eocd]; second = cd.replace(b"a", b"b", 1)
                new_eocd = bytearray(data[eocd:]); new_eocd[8:10] = (2).to_bytes(2, "little"); new_eocd[10:12] = (2).to_bytes(2, "little")
                new_eocd[12:16] = (len(cd) * 2).to_bytes(4, "little")
                sys.stdout.buffer.write(data[:cd_offset] + cd + second + bytes(new_eocd))
                """)
        await #expect { _ = try await readZip(overlapping) } throws: {
            ($0 as? ArchiveError)?.reason.contains("overlap") == true
        }
    }

    @Test func damagedEntriesFailOnSizeOrChecksum() async throws {
        let archive = try python(
            Self.writer + "sys.stdout.buffer.write(zip_of([('dump/a.txt', b'abcdefgh' * 100, 'stored')]))")
        var flipped = archive
        flipped[100] ^= 0x01  // a data byte of the stored entry
        await #expect { _ = try await readZip(flipped) } throws: {
            ($0 as? ArchiveError)?.reason.contains("CRC-32") == true
        }

        // A deflated entry whose header claims fewer bytes than it holds.
        var lying = try python(Self.writer + "sys.stdout.buffer.write(zip_of([('big', bytes(100000), 'deflate')]))")
        let directory = try #require(find([0x50, 0x4B, 0x01, 0x02], in: lying))
        for index in 0..<4 { lying[directory + 24 + index] = [0x10, 0, 0, 0][index] }
        await #expect { _ = try await readZip(lying) } throws: {
            ($0 as? ArchiveError)?.reason.contains("beyond its declared size") == true
        }

        await #expect { _ = try await readZip(Array(archive.prefix(archive.count - 30))) } throws: {
            ($0 as? ArchiveError)?.kind == .corrupt
        }
        await #expect { _ = try await readZip(Array("not a zip at all".utf8)) } throws: {
            ($0 as? ArchiveError)?.kind == .corrupt
        }
    }

    @Test func bombsHitTheLimits() async throws {
        let bomb = try python(
            Self.writer + "sys.stdout.buffer.write(zip_of([('zeros', bytes(30_000_000), 'deflate')]))")
        var limits = ExpansionLimits()
        limits.ratioGraceBytes = 1_000_000
        limits.maxRatio = 100
        await #expect { _ = try await readZip(bomb, expansion: limits) } throws: {
            ($0 as? ArchiveError)?.reason.contains("decompression bomb") == true
        }
    }

    /// The reason this reader exists: damaged or crafted zips must fail, never hang or crash.
    @Test func survivesRandomDamage() async throws {
        let archive = try python(
            Self.writer
                + "sys.stdout.buffer.write(zip_of([('dump/a.json', b'{\"kind\":\"PodList\"}' * 200, 'deflate'), ('dump/b.txt', b'line\\n' * 500, 'stored'), ('dump/c/', b'', 'stored')]))"
        )
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var damaged = archive
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                damaged[Int.random(in: 0..<damaged.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            if Int.random(in: 0..<4, using: &random) == 0 {
                damaged = Array(damaged.prefix(Int.random(in: 0...damaged.count, using: &random)))
            }
            do { _ = try await readZip(damaged) } catch is ArchiveError {}
        }
    }
}

func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    return (0...(haystack.count - needle.count)).first { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
}

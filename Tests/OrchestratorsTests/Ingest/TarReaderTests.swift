import Foundation
import NIOCore
import TestSupport
import Testing

@testable import Orchestrators

/// Reads every entry of `archive`, fed in chunks of the given sizes, into (entry, body) pairs.
func readTar(
    _ archive: [UInt8], chunkSizes: [Int] = [4096], limits: TarReader.Limits = .init()
) async throws -> [(entry: ArchiveEntry, body: [UInt8])] {
    let stream = ByteStream(chunked(archive, sizes: chunkSizes).async.makeAsyncIterator())
    var result: [(ArchiveEntry, [UInt8])] = []
    try await TarReader.read(stream, limits: limits) { entry, body in
        var bytes: [UInt8] = []
        while let chunk = try await body.next(upTo: 700) { bytes += chunk.readableBytesView }
        result.append((entry, bytes))
    }
    return result
}

/// `bytes` cut into buffers whose sizes cycle through `sizes`.
func chunked(_ bytes: [UInt8], sizes: [Int]) -> [ByteBuffer] {
    var chunks: [ByteBuffer] = []
    var offset = 0
    while offset < bytes.count {
        let size = max(1, sizes[chunks.count % sizes.count])
        chunks.append(ByteBuffer(bytes: bytes[offset..<min(offset + size, bytes.count)]))
        offset += size
    }
    return chunks
}

extension Array {
    /// The elements as an async sequence.
    var async: AsyncArray<Element> { AsyncArray(elements: self) }
}

/// An array as an async sequence.
struct AsyncArray<Element>: AsyncSequence {
    let elements: [Element]
    func makeAsyncIterator() -> Iterator { Iterator(base: elements.makeIterator()) }
    struct Iterator: AsyncIteratorProtocol {
        var base: IndexingIterator<[Element]>
        mutating func next() async -> Element? { base.next() }
    }
}

@Suite struct TarReaderTests {
    @Test(arguments: [TarWriter.LongNames.pax, .gnu])
    func randomArchivesRoundTripThroughAnyChunking(_ longNames: TarWriter.LongNames) async throws {
        var random = SystemRandomNumberGenerator()
        for round in 0..<30 {
            var writer = TarWriter(longNames: longNames)
            var expected: [(String, [UInt8])] = []
            for index in 0..<Int.random(in: 0...12, using: &random) {
                let nameLength = [5, 99, 100, 101, 250].randomElement(using: &random)!
                let name = "dir-\(round)/" + String(repeating: "n", count: nameLength) + "-\(index)-ü.json"
                let size = [0, 1, 511, 512, 513, 1024, Int.random(in: 0...5000, using: &random)].randomElement(
                    using: &random)!
                let contents = (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) }
                writer.add(name, contents, base256Size: index % 5 == 4)
                expected.append((name, contents))
            }
            writer.finish()
            let chunkSizes = (0..<5).map { _ in Int.random(in: 1...2000, using: &random) }
            let read = try await readTar(writer.bytes, chunkSizes: chunkSizes)
            #expect(read.map(\.entry.path) == expected.map(\.0), "round \(round)")
            #expect(read.map(\.body) == expected.map(\.1), "round \(round)")
            #expect(read.allSatisfy { $0.entry.kind == .file && $0.entry.size == Int64($0.body.count) })
        }
    }

    @Test func readsWhatPythonsTarfileWrites() async throws {
        for format in ["GNU_FORMAT", "PAX_FORMAT", "USTAR_FORMAT"] {
            let script = """
                import io, sys, tarfile
                buffer = io.BytesIO()
                with tarfile.open(fileobj=buffer, mode="w", format=tarfile.\(format)) as archive:
                    for name, data in [("dump/nodes.json", b'{"kind":"NodeList"}'), ("dump/" + "x" * 120 + "/logs.txt", b"line\\n" * 300),
                                       ("./dump/empty.json", b"")]:
                        if len(name) > 100 and "\(format)" == "USTAR_FORMAT": name = "dump/" + "x" * 60 + "/logs.txt"
                        info = tarfile.TarInfo(name); info.size = len(data); archive.addfile(info, io.BytesIO(data))
                    directory = tarfile.TarInfo("dump/ns"); directory.type = tarfile.DIRTYPE; archive.addfile(directory)
                sys.stdout.buffer.write(buffer.getvalue())
                """
            let read = try await readTar(try python(script), chunkSizes: [333])
            #expect(read.count == 4, "\(format)")
            #expect(read[0].entry.path == "dump/nodes.json" && read[0].body == Array(#"{"kind":"NodeList"}"#.utf8))
            #expect(read[1].entry.path.hasSuffix("/logs.txt") && read[1].body.count == 1500)
            #expect(read[2].entry.path == "dump/empty.json" && read[2].body.isEmpty, "a leading ./ is dropped")
            #expect(read[3].entry == .init(path: "dump/ns", kind: .directory, size: 0))
        }
    }

    @Test(
        arguments: [
            ("/etc/passwd", "0", "", "absolute path"),
            ("dump/../../etc/passwd", "0", "", "'..'"),
            ("dump/link", "2", "/etc/passwd", "link"),
            ("dump/hard", "1", "dump/nodes.json", "link"),
            ("dump/tty", "3", "", "device or FIFO"),
            ("dump/fifo", "6", "", "device or FIFO"),
            ("dump/sparse", "S", "", "unsupported type"),
        ] as [(String, Character, String, String)])
    func refusesDangerousEntries(_ path: String, _ type: Character, _ target: String, _ words: String) async throws {
        var writer = TarWriter()
        writer.add("dump/nodes.json", Array("{}".utf8))
        writer.add(path, [], type: type, linkTarget: target)
        writer.finish()
        await #expect {
            _ = try await readTar(writer.bytes)
        } throws: { error in
            guard let error = error as? ArchiveError else { return false }
            return error.kind == .refusedEntry && error.reason.contains(words)
        }
    }

    @Test func truncatedAndDamagedArchivesAreCorrupt() async throws {
        var writer = TarWriter()
        writer.add("dump/a.json", [UInt8](repeating: 65, count: 2000))
        writer.finish()
        let archive = writer.bytes
        for broken in [Array(archive.prefix(300)), Array(archive.prefix(1200))] {
            await #expect { _ = try await readTar(broken) } throws: { ($0 as? ArchiveError)?.kind == .corrupt }
        }
        var damaged = archive
        damaged[10] ^= 0xFF  // inside the name: the checksum no longer matches
        await #expect { _ = try await readTar(damaged) } throws: {
            ($0 as? ArchiveError)?.reason.contains("checksum") == true
        }
        // Ending exactly at a record boundary without the end marker is accepted, as tar itself does.
        let unterminated = Array(archive.prefix(512 + 2048))
        #expect(try await readTar(unterminated).count == 1)
    }

    @Test func limitsBoundEntriesAndMetadata() async throws {
        var writer = TarWriter()
        for index in 0..<5 { writer.add("f\(index)", [1]) }
        writer.finish()
        var limits = TarReader.Limits()
        limits.maxEntries = 4
        await #expect { _ = try await readTar(writer.bytes, limits: limits) } throws: {
            ($0 as? ArchiveError)?.kind == .limitExceeded
        }
        var long = TarWriter()
        long.add("d/" + String(repeating: "x", count: 5000), [1])
        long.finish()
        limits = TarReader.Limits()
        limits.maxMetadataBytes = 1000
        await #expect { _ = try await readTar(long.bytes, limits: limits) } throws: {
            ($0 as? ArchiveError)?.kind == .limitExceeded
        }
    }

    /// Random damage to valid archives: the reader returns or throws ArchiveError; it never crashes or hangs.
    @Test func survivesRandomDamage() async throws {
        var random = SystemRandomNumberGenerator()
        var writer = TarWriter()
        writer.add("dump/nodes.json", Array(String(repeating: "{\"kind\":\"NodeList\"}", count: 50).utf8))
        writer.add("dump/" + String(repeating: "y", count: 150) + "/logs.txt", Array(repeating: 10, count: 3000))
        writer.finish()
        for _ in 0..<2000 {
            var damaged = writer.bytes
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                damaged[Int.random(in: 0..<damaged.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            if Bool.random(using: &random) {
                damaged = Array(damaged.prefix(Int.random(in: 0...damaged.count, using: &random)))
            }
            do {
                _ = try await readTar(damaged, chunkSizes: [Int.random(in: 1...1024, using: &random)])
            } catch is ArchiveError {
            }
        }
    }
}

import NIOCore
import TestSupport
import Testing

@testable import Clients

@Suite struct RESPTests {
    static let samples: [RESPValue] = [
        .simpleString("OK"), .error("ERR unknown command"), .integer(-42), .integer(.max), .bulkString(nil),
        .bulkString(ByteBuffer()), .bulkString(ByteBuffer(bytes: [0, 13, 10, 36, 255])), .array(nil), .array([]),
        .array([
            .integer(1), .bulkString(ByteBuffer(string: "a")), .array([.simpleString("nested"), .bulkString(nil)]),
        ]),
    ]

    @Test func parsesWhatItEncodesWhateverTheChunking() throws {
        var stream = ByteBuffer()
        for value in Self.samples { value.encode(into: &stream) }
        let bytes = Array(stream.readableBytesView)
        var random = SeededRandom.forThisRun()
        for _ in 0..<200 {
            var pending = ByteBuffer()
            var parsed: [RESPValue] = []
            var offset = 0
            while offset < bytes.count {
                let size = Int.random(in: 1...9, using: &random)
                pending.writeBytes(bytes[offset..<min(bytes.count, offset + size)])
                offset += size
                while let value = try RESPParser().parse(&pending) { parsed.append(value) }
            }
            #expect(parsed == Self.samples, "\(random.replay)")
            #expect(pending.readableBytes == 0, "\(random.replay)")
        }
    }

    @Test func refusesMalformedAndOversizedInput() {
        var parser = RESPParser()
        parser.maxBulkBytes = 10
        parser.maxElements = 3
        parser.maxDepth = 2
        for bad in [
            "?x\r\n", ":12a\r\n", "$-2\r\n", "$abc\r\n", "$11\r\n", "*4\r\n", "*1\r\n*1\r\n*1\r\n:1\r\n",
            "$3\r\nabcXY", "+OK\rX",
        ] {
            var buffer = ByteBuffer(string: bad)
            #expect(throws: RESPError.self, "\(bad.debugDescription)") { _ = try parser.parse(&buffer) }
        }
        var endless = ByteBuffer(repeating: UInt8(ascii: "+"), count: 70_000)
        #expect(throws: RESPError.self) { _ = try RESPParser().parse(&endless) }
    }

    /// Random bytes never crash the parser or make it loop: each attempt ends with a value, a request for more, or
    /// an error.
    @Test func survivesRandomBytes() {
        var random = SeededRandom.forThisRun()
        let alphabet = Array("+-:$*0123456789\r\n-abc".utf8) + [0, 255]
        for _ in 0..<20_000 {
            var buffer = ByteBuffer(
                bytes: (0..<Int.random(in: 0...40, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
            )
            let before = buffer.readableBytes
            do {
                if try RESPParser().parse(&buffer) == nil { #expect(buffer.readableBytes == before) }
            } catch {}
        }
    }

    @Test func commandsAreArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RESPValue.encodeCommand([ByteBuffer(string: "SET"), ByteBuffer(string: "k"), ByteBuffer()], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n")
    }

    @Test func redisURLs() {
        let location = RedisLocation(url: "rediss://app:p%40ss@cache.internal:6380/4")
        #expect(location?.host == "cache.internal" && location?.port == 6380 && location?.database == 4)
        #expect(location?.username == "app" && location?.password == "p@ss" && location?.usesTLS == true)
        #expect(location.map { "\($0)" }?.contains("p@ss") == false)
        #expect(RedisLocation(url: "redis://:secret@localhost")?.username == nil)
        #expect(RedisLocation(url: "redis://localhost/x") == nil)
        #expect(RedisLocation(url: "http://localhost") == nil)
        #expect(RedisCache.escapeGlob("a*b?c[d]e\\f") == "a\\*b\\?c\\[d\\]e\\\\f")
    }
}

import Testing

@testable import Gateway

@Suite struct ChunkSizeWatchTests {
    private static let limit: UInt64 = 1 << 20
    private static let chunkedHead = "POST /api/v1/snapshots HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

    /// The size refused in `text` fed whole, and fed a byte at a time (where reads split it does not matter), and
    /// where in the whole text the refusal happened.
    private static func refused(_ text: String) -> (whole: UInt64?, bytewise: UInt64?, offset: Int?) {
        var whole = ChunkSizeWatch(limit: limit)
        var bytewise = ChunkSizeWatch(limit: limit)
        var bytewiseSize: UInt64?
        for byte in text.utf8 where bytewiseSize == nil {
            if case .tooLarge(let size, _) = [byte].withUnsafeBytes({ bytewise.feed($0) }) { bytewiseSize = size }
        }
        guard case .tooLarge(let size, let offset) = Array(text.utf8).withUnsafeBytes({ whole.feed($0) }) else {
            return (nil, bytewiseSize, nil)
        }
        return (size, bytewiseSize, offset)
    }

    /// Refused as soon as the digits read pass the limit: the size reported is what was read by then.
    @Test(
        arguments: [
            ("ffffffffffffffff\r\n", 0xFF_FFFF), ("100001\r\n", 0x10_0001), ("100001;ext=1\r\n", 0x10_0001),
            ("0000000000000000000000100001\r\n", 0x10_0001), ("10\r\n0123456789abcdef\r\nFFFFFFFFFF\r\n", 0xFF_FFFF),
        ] as [(String, UInt64)])
    func aChunkPastTheLimitIsRefusedAtItsSizeLine(_ body: String, _ size: UInt64) {
        let text = Self.chunkedHead + body
        let (whole, bytewise, offset) = Self.refused(text)
        #expect(whole == size)
        #expect(bytewise == size)
        // The refusal comes at the digit that passed the limit: everything before it is passed on.
        let last = text.utf8.index(text.utf8.startIndex, offsetBy: offset ?? 0)
        #expect(text.utf8[last] != UInt8(ascii: "\r") && text.utf8[..<last].count >= Self.chunkedHead.utf8.count)
    }

    @Test(arguments: [
        // Chunks within the limit, with extensions and trailers, then a second request.
        chunkedHead + "100000\r\n" + String(repeating: "x", count: 0x100000) + "\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n"
            + "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        // A known-length body whose bytes look like a huge chunk size: data, not framing.
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\nffffffffffffffff\r\n\r\n",
        // Blank lines before a request line; a Content-Length that is not a number turns the watch off.
        "\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: many\r\n\r\nffffffffffffffff\r\n",
        // gzip is the last coding: the body is not chunked (and is refused elsewhere).
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\nffffffffffffffff\r\n",
        // A size line that is not hex turns the watch off.
        chunkedHead + "zz\r\nffffffffffffffff\r\n",
    ])
    func framingItCanFollowOrNotIsNeverRefused(_ text: String) {
        let (whole, bytewise, _) = Self.refused(text)
        #expect(whole == nil)
        #expect(bytewise == nil)
    }

    /// Requests on one connection are followed one after another: a huge chunk in the fourth is seen.
    @Test func pipelinedRequestsAreFollowed() {
        let text =
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc"
            + Self.chunkedHead + "3\r\nabc\r\n0\r\n\r\n" + Self.chunkedHead + "FFFFFFFFFFFFFFFF\r\n"
        let (whole, bytewise, offset) = Self.refused(text)
        #expect(whole == 0xFF_FFFF)
        #expect(bytewise == 0xFF_FFFF)
        let lastSizeLine = text.utf8.count - "FFFFFFFFFFFFFFFF\r\n".utf8.count
        #expect(offset == lastSizeLine + 5, "at the sixth F of the last size line")
    }

    /// Once off, it stays off: what follows an unreadable head is never judged.
    @Test func aWatchTurnedOffStaysOff() {
        var watch = ChunkSizeWatch(limit: Self.limit)
        #expect(Array("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".utf8).withUnsafeBytes { watch.feed($0) } == .fine)
        #expect(Array((Self.chunkedHead + "ffffffffffffffff\r\n").utf8).withUnsafeBytes { watch.feed($0) } == .fine)
    }
}

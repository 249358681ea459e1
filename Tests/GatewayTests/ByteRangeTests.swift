import Testing

@testable import Gateway

@Suite struct ByteRangeTests {
    @Test(
        arguments: [
            (nil, ByteRange.Request.whole),
            ("bytes=0-0", .range(0..<1)),
            ("bytes=10-19", .range(10..<20)),
            ("bytes=90-", .range(90..<100)),
            ("bytes=-10", .range(90..<100)),
            ("bytes=-1000", .range(0..<100)),
            ("bytes=50-5000", .range(50..<100)),
            (" bytes=1-2 ", .range(1..<3)),
            ("bytes = 1-2", .whole),
            ("BYTES=1-2", .range(1..<3)),
            ("bytes=100-", .unsatisfiable),
            ("bytes=100-200", .unsatisfiable),
            ("bytes=-0", .unsatisfiable),
            ("bytes=5-1", .whole),
            ("bytes=0-1,5-6", .whole),
            ("pages=1-2", .whole),
            ("bytes=a-b", .whole),
            ("bytes=-", .whole),
            ("bytes=99999999999999999999-", .unsatisfiable),
            ("bytes=0-99999999999999999999", .range(0..<100)),
            ("bytes=90-18446744073709551616", .range(90..<100)),
            ("bytes=-99999999999999999999", .range(0..<100)),
            ("bytes=5-1e20", .whole),
            ("bytes=1e3-", .whole),
            ("bytes=0x10-", .whole),
        ] as [(String?, ByteRange.Request)])
    func interpretsTheRangeHeader(_ header: String?, _ expected: ByteRange.Request) {
        #expect(ByteRange.parse(header, size: 100) == expected)
    }

    @Test func matchesEntityTags() {
        #expect(ByteRange.noneMatchHits("\"abc\"", etag: "\"abc\""))
        #expect(ByteRange.noneMatchHits("\"x\", W/\"abc\"", etag: "\"abc\""))
        #expect(ByteRange.noneMatchHits("*", etag: "\"abc\""))
        #expect(!ByteRange.noneMatchHits("\"abcd\"", etag: "\"abc\""))
    }
}

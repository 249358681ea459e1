import KubinModel
import Testing

@testable import Orchestrators

@Suite struct FormatSnifferTests {
    @Test(
        arguments: [
            ([0x1F, 0x8B, 0x08, 0x00], SnapshotFormat.gzip),
            ([0x50, 0x4B, 0x03, 0x04], .zip),
            ([0x50, 0x4B, 0x05, 0x06], .zip),
            (Array("{\"kind\":\"NodeList\"}".utf8), .json),
            (Array("  \n\t{".utf8), .json),
            ([0xEF, 0xBB, 0xBF] + Array("[1]".utf8), .json),
        ] as [([UInt8], SnapshotFormat)])
    func recognisesAcceptedFormats(_ bytes: [UInt8], _ format: SnapshotFormat) {
        #expect(FormatSniffer.classify(bytes, isComplete: false) == .format(format))
        #expect(FormatSniffer.classify(bytes, isComplete: true) == .format(format))
    }

    @Test(arguments: [
        Array("hello".utf8), Array("<html>".utf8), [0x00, 0x01, 0x02, 0x03], Array("ustar".utf8), [0x50, 0x4B, 0x01],
        [0x1F, 0x00],
    ])
    func refusesEverythingElse(_ bytes: [UInt8]) {
        #expect(FormatSniffer.classify(bytes, isComplete: true) == .unsupported)
    }

    @Test func waitsForMoreBytesWhenTheStartIsAmbiguous() {
        #expect(FormatSniffer.classify([], isComplete: false) == .needMoreBytes)
        #expect(FormatSniffer.classify([0x1F], isComplete: false) == .needMoreBytes)
        #expect(FormatSniffer.classify([0x50, 0x4B], isComplete: false) == .needMoreBytes)
        #expect(FormatSniffer.classify(Array("   ".utf8), isComplete: false) == .needMoreBytes)
        #expect(FormatSniffer.classify([], isComplete: true) == .unsupported)
        #expect(FormatSniffer.classify([0x1F], isComplete: true) == .unsupported)
    }

    @Test func givesUpOnEndlessWhitespace() {
        let spaces = [UInt8](repeating: 0x20, count: FormatSniffer.maxLeadingWhitespace + 1)
        #expect(FormatSniffer.classify(spaces, isComplete: false) == .unsupported)
    }
}

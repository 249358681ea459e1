import Testing

@testable import Clients

@Suite struct DNSMessageTests {
    /// The header of an answer to query 0x1234 with `answers` records: response, recursion desired and available.
    private func header(flags: UInt16 = 0x8180, answers: UInt16) -> [UInt8] {
        [0x12, 0x34, UInt8(flags >> 8), UInt8(flags & 0xFF), 0, 1, 0, UInt8(answers), 0, 0, 0, 0]
    }

    /// The question `svc.test` of `type`, which starts at offset 12 (where answers point back to).
    private func question(_ type: UInt8) -> [UInt8] {
        [3] + Array("svc".utf8) + [4] + Array("test".utf8) + [0, 0, type, 0, 1]
    }

    /// An answer record named by a pointer to the question's name.
    private func record(_ type: UInt8, _ data: [UInt8]) -> [UInt8] {
        [0xC0, 12, 0, type, 0, 1, 0, 0, 0, 30, 0, UInt8(data.count)] + data
    }

    @Test func aQueryIsTheStandardRecursiveQuestion() throws {
        let bytes = try DNSMessage.query(id: 0x1234, name: "svc.test", type: .srv)
        #expect(bytes == [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0] + question(33))
        #expect(throws: DNSMessage.Malformed.self) {
            try DNSMessage.query(id: 1, name: String(repeating: "x", count: 64) + ".test", type: .a)
        }
    }

    @Test func addressesAreReadWithCompressedNames() throws {
        let message =
            header(answers: 3) + question(1) + record(1, [10, 0, 0, 7]) + record(5, [0xC0, 12])
            + record(1, [192, 168, 1, 20])
        #expect(
            try DNSMessage.records(in: message, id: 0x1234, type: .a) == [
                .address("10.0.0.7"), .address("192.168.1.20"),
            ])
    }

    @Test func ipv6AddressesAreWrittenAsRFC5952Says() throws {
        let fd00 = [0xFD, 0] + Array(repeating: 0, count: 13) + [7] as [UInt8]
        let message = header(answers: 1) + question(28) + record(28, fd00)
        #expect(try DNSMessage.records(in: message, id: 0x1234, type: .aaaa) == [.address("fd00::7")])
        let groups: [[UInt16]: String] = [
            [0, 0, 0, 0, 0, 0, 0, 1]: "::1",
            [0x2001, 0xDB8, 0, 0, 1, 0, 0, 1]: "2001:db8::1:0:0:1",
            [1, 0, 0, 2, 0, 0, 0, 3]: "1:0:0:2::3",
            [1, 2, 3, 4, 5, 6, 0, 8]: "1:2:3:4:5:6:0:8",
            [0, 0, 0, 0, 0, 0, 0, 0]: "::",
        ]
        for (value, text) in groups {
            #expect(DNSMessage.ipv6(value.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }) == text)
        }
    }

    @Test func serviceRecordsCarryTheirTargets() throws {
        let target = [3] + Array("one".utf8) + [0xC0, 12] as [UInt8]
        let message = header(answers: 1) + question(33) + record(33, [0, 10, 0, 5, 0x1F, 0x90] + target)
        #expect(
            try DNSMessage.records(in: message, id: 0x1234, type: .srv) == [
                .service(priority: 10, weight: 5, port: 8080, target: "one.svc.test")
            ])
    }

    @Test func aNameThatDoesNotExistHasNoRecords() throws {
        #expect(try DNSMessage.records(in: header(flags: 0x8183, answers: 0) + question(1), id: 0x1234, type: .a) == [])
    }

    @Test(
        arguments: [
            ("another query's answer", [0x43, 0x21] + [0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]),
            ("a question, not an answer", [0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("a truncated answer", [0x12, 0x34, 0x83, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("a server failure", [0x12, 0x34, 0x81, 0x82, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("a header cut short", [0x12, 0x34, 0x81]),
            ("a name pointing at itself", [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]),
            (
                "a record longer than the message",
                [0x12, 0x34, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0] + [0, 0, 1, 0, 1]
                    + [0, 0, 0, 1, 0, 200, 1, 2]
            ),
            ("a label past the end", [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 40, 65]),
        ] as [(String, [UInt8])])
    func malformedAnswersAreRefused(_ what: String, bytes: [UInt8]) {
        #expect(throws: DNSMessage.Malformed.self, "\(what)") {
            try DNSMessage.records(in: bytes, id: 0x1234, type: .a)
        }
    }
}

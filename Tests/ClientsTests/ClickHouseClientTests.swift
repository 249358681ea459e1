import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import TestSupport
import Testing

@testable import Clients

/// The ClickHouse HTTP client and its one escaping function, against the real server (18.16 here).
@Suite struct ClickHouseClientTests {
    /// Strings that break naive quoting: quotes, backslashes, NUL and other control characters, comment markers,
    /// statement separators, unicode (including what some decoders fold), and an attempt to close the literal.
    static let hostile = [
        "plain", "", "'", "''", "\\", "\\'", "'; DROP TABLE t; --", "a' OR '1'='1", "x\0y", "\0", "line\nbreak",
        "tab\there", "cr\rlf", "\u{08}\u{0C}\u{1B}\u{7F}", "-- comment", "/* open", "*/", "é ü 日本 🚀",
        "\u{2028}\u{FEFF}",
        "%_", "back\\\\slash", "\\x41", "\\0", "$1", "{x}", "' || '", "'\n) FORMAT JSON --",
    ]

    func withClient(_ body: (ClickHouseClient) async throws -> Void) async throws {
        let location = try TestServers.clickHouse()
        try await HTTPClient.withHTTPClient { http in
            try await body(ClickHouseClient(location: location, http: http, logger: Logger(label: "ch")))
        }
    }

    @Test func everyHostileStringRoundTripsAsALiteral() async throws {
        try await withClient { client in
            try await client.ping()
            for text in Self.hostile {
                // The server's bytes (hex) and the decoded answer are both exactly the text.
                let literal = ClickHouseSQL.literal(text)
                let rows = try await client.rows("SELECT hex(\(literal)) AS h, \(literal) AS t")
                #expect(rows.count == 1, "\(text.debugDescription)")
                let expected = text.utf8.map { String(format: "%02X", $0) }.joined()
                #expect(rows.first?["h"] == expected, "\(text.debugDescription)")
                #expect(rows.first.flatMap { $0["t"].map { Array($0.utf8) } } == Array(text.utf8))
            }
        }
    }

    @Test func hostileStringsInFiltersMatchOnlyThemselves() async throws {
        try await withClient { client in
            let table = "injection_\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))"
            try await client.execute("CREATE TABLE \(table) (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
            try await client.insert(
                into: table,
                rows: Self.hostile.enumerated().map { ["id": $0.offset, "name": $0.element] as [String: Any] })
            for (index, text) in Self.hostile.enumerated() {
                let rows = try await client.rows(
                    "SELECT id FROM \(table) WHERE name = \(ClickHouseSQL.literal(text)) ORDER BY id")
                #expect(rows.compactMap { $0.int("id") } == [index], "\(text.debugDescription)")
                let found = try await client.rows(
                    "SELECT count() AS n FROM \(table) WHERE positionCaseInsensitiveUTF8(name, "
                        + "\(ClickHouseSQL.literal(text))) > 0")
                #expect((found.first?.int("n") ?? 0) >= 1, "\(text.debugDescription)")
            }
            let total = try await client.rows("SELECT count() AS n FROM \(table)")
            #expect(total.first?.int("n") == Self.hostile.count, "no statement was injected")
            try await client.execute("DROP TABLE \(table)")
        }
    }

    @Test func serverErrorsAreThrownWithTheirCodeButNotTheStatement() async throws {
        try await withClient { client in
            await #expect {
                try await client.execute("SELECT no_such_column FROM system.one WHERE 'secret-literal'")
            } throws: { thrown in
                let error = thrown as? ClickHouseError
                return error?.code == .server && error?.serverCode == 47 && !"\(thrown)".contains("secret-literal")
            }
        }
        #expect(ClickHouseLocation(url: "clickhouse://app:p%40ss@ch:8123/kubin")?.password == "p@ss")
        #expect(
            ClickHouseLocation(url: "clickhouse://app:p%40ss@ch:8123/kubin").map { "\($0)" }?.contains("p@ss") == false)
        #expect(ClickHouseLocation(url: "clickhouse://ch/bad-name") == nil)
    }

    /// A query that fails after its answer has started (ClickHouse then writes its error into the body of a 200):
    /// an error with the server's message, never rows taken for an answer.
    @Test func aFailureInsideAStreamedAnswerIsAnError() async throws {
        try await withClient { client in
            await #expect {
                _ = try await client.rows(
                    "SELECT number, throwIf(number = 200000) AS x FROM system.numbers LIMIT 300000")
            } throws: { "\($0)".contains("Code: 395") }
            let many = try await client.rows(
                "SELECT number AS n, toString(number) AS s FROM system.numbers LIMIT 100000")
            #expect(many.count == 100_000)
            #expect(
                many.enumerated().allSatisfy { $0.element.int("n") == $0.offset && $0.element["s"] == "\($0.offset)" })
            let nulls = try await client.rows("SELECT CAST(NULL AS Nullable(String)) AS a, '\\\\N' AS b, '' AS c")
            #expect(nulls.count == 1 && nulls[0]["a"] == nil && nulls[0]["b"] == "\\N" && nulls[0]["c"] == "")
        }
    }
}

@Suite struct TabSeparatedDecoderTests {
    @Test func decodesEscapesAndNullsWhateverTheChunking() throws {
        let answer = Array("a\tb\tc\nx\\ty\t\\N\t\\t\\n\\0\\\\\\'\n\t\t\n".utf8)
        for size in 1...answer.count {
            var decoder = TabSeparatedDecoder()
            var rows: [ClickHouseRow] = []
            for start in stride(from: 0, to: answer.count, by: size) {
                rows += try decoder.feed(ByteBuffer(bytes: answer[start..<min(answer.count, start + size)]))
            }
            try decoder.finish()
            #expect(rows.count == 2)
            #expect(rows.first?["a"] == "x\ty" && rows.first?["b"] == nil && rows.first?["c"] == "\t\n\0\\'")
            #expect(rows.last?["a"] == "" && rows.last?["c"] == "" && rows.last?["d"] == nil)
        }
        var truncated = TabSeparatedDecoder()
        _ = try truncated.feed(ByteBuffer(string: "a\nunfinished"))
        #expect(throws: ClickHouseError.self) { try truncated.finish() }
        var wrongWidth = TabSeparatedDecoder()
        #expect(throws: ClickHouseError.self) { _ = try wrongWidth.feed(ByteBuffer(string: "a\tb\n1\n")) }
    }
}

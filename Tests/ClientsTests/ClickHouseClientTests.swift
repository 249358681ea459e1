import AsyncHTTPClient
import Foundation
import Logging
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
                // Compared as hex: the server's bytes exactly (a JSON decoder may fold some characters).
                let rows = try await client.rows("SELECT hex(\(ClickHouseSQL.literal(text))) AS h")
                #expect(rows.count == 1, "\(text.debugDescription)")
                let expected = text.utf8.map { String(format: "%02X", $0) }.joined()
                #expect(rows.first?["h"] as? String == expected, "\(text.debugDescription)")
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
                #expect(rows.compactMap { $0["id"] as? Int } == [index], "\(text.debugDescription)")
                let found = try await client.rows(
                    "SELECT count() AS n FROM \(table) WHERE positionCaseInsensitiveUTF8(name, "
                        + "\(ClickHouseSQL.literal(text))) > 0")
                #expect((found.first?["n"] as? Int ?? 0) >= 1, "\(text.debugDescription)")
            }
            let total = try await client.rows("SELECT count() AS n FROM \(table)")
            #expect(total.first?["n"] as? Int == Self.hostile.count, "no statement was injected")
            try await client.execute("DROP TABLE \(table)")
        }
    }

    @Test func serverErrorsAreThrownWithTheirCodeButNotTheStatement() async throws {
        try await withClient { client in
            await #expect {
                try await client.execute("SELECT no_such_column FROM system.one WHERE 'secret-literal'")
            } throws: { error in
                "\(error)".contains("Code: 47") && !"\(error)".contains("secret-literal")
            }
        }
        #expect(ClickHouseLocation(url: "clickhouse://app:p%40ss@ch:8123/kubin")?.password == "p@ss")
        #expect(
            ClickHouseLocation(url: "clickhouse://app:p%40ss@ch:8123/kubin").map { "\($0)" }?.contains("p@ss") == false)
        #expect(ClickHouseLocation(url: "clickhouse://ch/bad-name") == nil)
    }
}

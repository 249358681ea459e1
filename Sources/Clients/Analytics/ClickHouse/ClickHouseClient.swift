import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Why a ClickHouse call failed: the server's error code and first line, or the transport's error.
package struct ClickHouseError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    package enum Code: String, Sendable {
        /// The server refused or failed a statement; ``ClickHouseError/serverCode`` says which error.
        case server
        /// An answer exceeded the client's bound.
        case answerTooLarge
        /// An answer could not be read as rows of the expected shape.
        case malformedAnswer
        /// Work the server accepted (a mutation) did not finish in time.
        case unfinished
    }

    package let code: Code
    /// The server's first line (`Code: 47, e.displayText() = DB::Exception: ...`) or the client's reason; never a
    /// statement.
    package let message: String

    /// The server's error number (`Code: 47` is 47), for ``Code/server`` errors that carry one.
    package var serverCode: Int? {
        guard message.hasPrefix("Code: ") else { return nil }
        return Int(message.dropFirst(6).prefix { $0.isNumber })
    }

    package var description: String { "ClickHouse: \(message)" }
}

/// ClickHouse's HTTP interface: statements in the request body, results as JSONEachRow, every call with
/// `max_execution_time` and a client timeout.
///
/// ClickHouse 18.16 (what Debian ships) has no query parameters, so values reach SQL only as literals made by
/// ``ClickHouseSQL``; nothing else may put a value into a statement.
package final class ClickHouseClient: Sendable {
    private let location: ClickHouseLocation
    private let http: HTTPClient
    private let timeout: Duration
    private let logger: Logger

    package init(location: ClickHouseLocation, http: HTTPClient, timeout: Duration = .seconds(10), logger: Logger) {
        self.location = location
        self.http = http
        self.timeout = timeout
        self.logger = logger
    }

    /// Runs a statement that returns nothing (DDL, `ALTER ... DELETE`, `INSERT ... VALUES`).
    package func execute(_ sql: String) async throws {
        _ = try await send(ByteBuffer(string: sql))
    }

    /// Runs a `SELECT` (without a `FORMAT`) and returns its rows, decoded as the answer streams in (memory holds the
    /// rows, never the whole answer's text as well).
    package func rows(_ sql: String) async throws -> [ClickHouseRow] {
        let response = try await post(ByteBuffer(string: sql + " FORMAT TabSeparatedWithNames"))
        guard response.status == .ok else { throw try await Self.failure(response) }
        var decoder = TabSeparatedDecoder()
        var rows: [ClickHouseRow] = []
        var received = 0
        for try await chunk in response.body {
            received += chunk.readableBytes
            guard received <= Self.maxAnswerBytes else {
                throw ClickHouseError(
                    code: .answerTooLarge, message: "an answer exceeded \(Self.maxAnswerBytes >> 20) MiB")
            }
            rows += try decoder.feed(chunk)
        }
        try decoder.finish()
        return rows
    }

    /// Inserts `rows` (JSON objects) into `table` in one JSONEachRow request.
    package func insert(into table: String, rows: [[String: Any]]) async throws {
        guard !rows.isEmpty else { return }
        var body = ByteBuffer(string: "INSERT INTO \(table) FORMAT JSONEachRow\n")
        for row in rows {
            body.writeBytes(try JSONSerialization.data(withJSONObject: row))
            body.writeString("\n")
        }
        _ = try await send(body)
    }

    /// Inserts rows already written as JSONEachRow text (one JSON object per line) into `table`.
    package func insert(into table: String, jsonEachRow rows: ByteBuffer) async throws {
        guard rows.readableBytes > 0 else { return }
        var body = ByteBuffer(string: "INSERT INTO \(table) FORMAT JSONEachRow\n")
        body.writeImmutableBuffer(rows)
        _ = try await send(body)
    }

    /// Throws when the server does not answer `SELECT 1`.
    package func ping() async throws {
        guard try await send(ByteBuffer(string: "SELECT 1")).trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        else { throw ClickHouseError(code: .malformedAnswer, message: "unexpected answer to SELECT 1") }
    }

    /// Answers larger than this are refused (queries carry a `LIMIT`; this bounds a mistake).
    static let maxAnswerBytes = 256 << 20

    private func send(_ body: ByteBuffer) async throws -> String {
        let response = try await post(body)
        guard response.status == .ok else { throw try await Self.failure(response) }
        return String(buffer: try await response.body.collect(upTo: Self.maxAnswerBytes))
    }

    private func post(_ body: ByteBuffer) async throws -> HTTPClientResponse {
        let seconds = max(1, Int(timeout / .seconds(1)))
        let scheme = location.usesTLS ? "https" : "http"
        var request = HTTPClientRequest(
            url: "\(scheme)://\(location.host):\(location.port)/?database=\(location.database)"
                + "&max_execution_time=\(seconds)&date_time_input_format=best_effort")
        request.method = .POST
        request.headers.add(name: "X-ClickHouse-User", value: location.username)
        if let password = location.password { request.headers.add(name: "X-ClickHouse-Key", value: password) }
        request.body = .bytes(body)
        return try await http.execute(request, timeout: .seconds(Int64(seconds) + 2), logger: logger)
    }

    /// The server's error: "Code: 62, e.displayText() = DB::Exception: ..." — its first line, never the statement.
    private static func failure(_ response: HTTPClientResponse) async throws -> ClickHouseError {
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        let first = text.split(separator: "\n").first.map(String.init) ?? "HTTP \(response.status.code)"
        return ClickHouseError(code: .server, message: String(first.prefix(300)))
    }
}

/// The one way values enter ClickHouse SQL: quoted literals with every special character escaped.
package enum ClickHouseSQL {
    /// `text` as a single-quoted string literal: backslash and quote escaped, control characters as escapes, NUL as
    /// `\0`; everything else (comment markers, unicode) is inert inside the quotes.
    package static func literal(_ text: String) -> String {
        var quoted = "'"
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": quoted += "\\\\"
            case "'": quoted += "\\'"
            case "\0": quoted += "\\0"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case "\u{08}": quoted += "\\b"
            case "\u{0C}": quoted += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    quoted += String(format: "\\x%02X", scalar.value)
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "'"
    }

    /// An integer literal.
    package static func literal(_ value: Int64) -> String { String(value) }
}

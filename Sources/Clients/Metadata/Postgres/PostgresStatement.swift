import Logging
import PostgresNIO

/// A SQL statement built in pieces, every value a bound parameter (`$1`, `$2`, ...): text is never spliced in.
struct PostgresStatement {
    private(set) var sql: String
    private(set) var binds = PostgresBindings()

    init(_ sql: String = "") { self.sql = sql }

    /// Appends SQL text (never a value).
    mutating func append(_ text: String) { sql += text }

    /// Binds `value` and returns its placeholder.
    mutating func bind(_ value: some PostgresThrowingDynamicTypeEncodable) throws -> String {
        try binds.append(value)
        return "$\(binds.count)"
    }

    /// Binds `value` or NULL and returns its placeholder.
    mutating func bind<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value?) throws -> String {
        try binds.append(value)
        return "$\(binds.count)"
    }

    /// The statement for postgres-nio.
    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}

/// Runs statements: the pooled client, or one connection inside a transaction.
protocol PostgresExecutor {
    func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence
}

extension PostgresClient: PostgresExecutor {
    func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        try await self.query(query, logger: logger)
    }
}

extension PostgresConnection: PostgresExecutor {
    func run(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        try await self.query(query, logger: logger)
    }
}

extension PostgresExecutor {
    /// The rows of `statement`, collected.
    func rows(_ statement: PostgresStatement, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        try await run(statement.query, logger: logger).collect().map { $0.makeRandomAccess() }
    }

    /// Runs `statement` and discards its rows.
    func execute(_ statement: PostgresStatement, logger: Logger) async throws {
        _ = try await run(statement.query, logger: logger).collect()
    }
}

extension PostgresRandomAccessRow {
    /// The value of `column`; throws when it is missing or of another type.
    func value<Value: PostgresDecodable>(_ column: String, as type: Value.Type = Value.self) throws -> Value {
        try self[column].decode(Value.self)
    }
}

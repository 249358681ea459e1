import Logging
import NIOCore
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
    /// The rows of `query`, all of them.
    func collect(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow]
}

extension PostgresClient: PostgresExecutor {
    func collect(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await withConnection { try await $0.collect(query, logger: logger) }
    }
}

extension PostgresConnection: PostgresExecutor {
    func collect(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await closingWhenCancelled { try await self.query(query, logger: logger).collect() }
    }

    /// Runs `body` on this connection; when the task is cancelled meanwhile, the connection closes, which ends the
    /// query at once. postgres-nio does not cancel a running query, so a server that stopped answering (hung, or
    /// black-holed) would otherwise hold the caller, and its store guard's time limit with it.
    func closingWhenCancelled<Result>(
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> Result
    ) async throws -> Result {
        try await withTaskCancellationHandler {
            try await body()
        } onCancel: {
            let _: EventLoopFuture<Void> = self.close()
        }
    }
}

extension PostgresExecutor {
    /// The rows of `statement`, collected.
    func rows(_ statement: PostgresStatement, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        try await collect(statement.query, logger: logger).map { $0.makeRandomAccess() }
    }

    /// Runs `statement` and discards its rows.
    func execute(_ statement: PostgresStatement, logger: Logger) async throws {
        _ = try await collect(statement.query, logger: logger)
    }
}

extension PostgresRandomAccessRow {
    /// The value of `column`; throws when it is missing or of another type.
    func value<Value: PostgresDecodable>(_ column: String, as type: Value.Type = Value.self) throws -> Value {
        try self[column].decode(Value.self)
    }
}

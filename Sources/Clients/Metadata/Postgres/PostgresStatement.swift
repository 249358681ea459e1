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
        try await closingWhenCancelled {
            let answered = eventLoop.makePromise(of: [PostgresRow].self)
            self.query(query, logger: logger).map(\.rows).cascade(to: answered)
            // postgres-nio writes a query to its channel without a promise: a query that reaches a channel that has
            // closed is dropped, and its answer never comes (a cancelled call's connection closes; a transaction's
            // ROLLBACK then waited forever). Checked after the write, in the loop's order: on a closed channel the
            // wait fails (a second completion of the promise is ignored).
            eventLoop.execute {
                if self.isClosed { answered.fail(PostgresConnectionClosed()) }
            }
            return try await answered.futureResult.get()
        }
    }

    /// `body` in a transaction on this connection: BEGIN, then COMMIT, or ROLLBACK when `body` throws (and the
    /// connection closes when the ROLLBACK fails, so that the pool does not lend it out inside a transaction). Our
    /// own rather than postgres-nio's `withTransaction`, whose BEGIN, COMMIT and ROLLBACK can wait forever on a
    /// closed connection (see ``collect(_:logger:)``).
    func transaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> Result
    ) async throws -> Result {
        _ = try await collect(PostgresQuery(unsafeSQL: "BEGIN"), logger: logger)
        let value: Result
        do {
            value = try await body()
        } catch {
            do {
                _ = try await collect(PostgresQuery(unsafeSQL: "ROLLBACK"), logger: logger)
            } catch {
                let _: EventLoopFuture<Void> = close()
            }
            throw error
        }
        _ = try await collect(PostgresQuery(unsafeSQL: "COMMIT"), logger: logger)
        return value
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

/// The connection closed before its query was answered.
struct PostgresConnectionClosed: Error, CustomStringConvertible {
    var description: String { "the PostgreSQL connection closed before the query was answered" }
}

import Foundation
import NIOSSL
import PostgresNIO

/// Where a PostgreSQL database is, parsed from `postgres://user:password@host:port/database?sslmode=...`.
///
/// `sslmode` is `disable`, `prefer` (the default, as libpq's) or `require`. `statement_timeout` (milliseconds, default
/// 10000) bounds every statement of the pooled connections on the server, which cancels a statement that runs longer
/// (migrations, on a connection of their own, are not bounded). The password never appears in ``description``.
package struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    /// TLS use.
    package enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    package var host: String
    package var port: Int
    package var username: String
    package var password: String?
    package var database: String
    package var tls: TLSMode
    /// The server-side bound of every pooled statement, in milliseconds (0: none).
    package var statementTimeoutMilliseconds = 10_000

    /// Parses a `postgres://` or `postgresql://` URL; nil when it is not one.
    package init?(url text: String) {
        guard let url = ServerURL(text, schemes: ["postgres", "postgresql"]), !url.path.isEmpty,
            !url.path.contains("/"), let tls = TLSMode(rawValue: url.query("sslmode") ?? "prefer")
        else { return nil }
        if let text = url.query("statement_timeout") {
            guard let milliseconds = Int(text), milliseconds >= 0 else { return nil }
            self.statementTimeoutMilliseconds = milliseconds
        }
        self.host = url.host
        self.port = url.port ?? 5432
        self.username = url.user ?? "postgres"
        self.password = url.password
        self.database = url.path
        self.tls = tls
    }

    package var description: String { "postgres://\(username)@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)" }

    /// The pooled client's configuration.
    var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database,
            tls: clientTLS)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", String(statementTimeoutMilliseconds))
        ]
        return configuration
    }

    /// A single connection's configuration (migrations).
    package func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database,
            tls: try connectionTLS())
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    private var clientTLS: PostgresClient.Configuration.TLS {
        switch tls {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
    }

    private func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        switch tls {
        case .disable: .disable
        case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
    }
}

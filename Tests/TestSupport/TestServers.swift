import Clients
import Foundation
import Logging
import PostgresNIO

/// The real servers the production implementations are tested against. `scripts/test` starts them and names them in
/// `KUBIN_TEST_*` variables; without those, these tests fail and say so (they never skip silently).
package enum TestServers {
    package struct Missing: Error, CustomStringConvertible {
        package var variable: String
        package init(variable: String) { self.variable = variable }
        package var description: String {
            "\(variable) is not set: run the tests with scripts/test, which starts the servers and sets it"
        }
    }

    /// The PostgreSQL server's maintenance database.
    package static func postgres() throws -> PostgresLocation {
        let variable = "KUBIN_TEST_POSTGRES_URL"
        guard let text = ProcessInfo.processInfo.environment[variable], let location = PostgresLocation(url: text)
        else { throw Missing(variable: variable) }
        return location
    }

    /// The Redis server (with its password and database).
    package static func redis() throws -> RedisLocation {
        let variable = "KUBIN_TEST_REDIS_URL"
        guard let text = ProcessInfo.processInfo.environment[variable], let location = RedisLocation(url: text)
        else { throw Missing(variable: variable) }
        return location
    }

    /// The S3 server's bucket and the key it accepts.
    package static func s3() throws -> (location: S3Location, credentials: SigV4Signer.Credentials) {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment["KUBIN_TEST_S3_URL"], let location = S3Location(url: text) else {
            throw Missing(variable: "KUBIN_TEST_S3_URL")
        }
        guard let key = environment["KUBIN_TEST_S3_ACCESS_KEY_ID"],
            let secret = environment["KUBIN_TEST_S3_SECRET_ACCESS_KEY"]
        else { throw Missing(variable: "KUBIN_TEST_S3_ACCESS_KEY_ID") }
        return (location, SigV4Signer.Credentials(accessKeyID: key, secretAccessKey: secret))
    }

    /// The S3 server that does not check signatures (for listing by prefix, which the checking one gets wrong).
    package static func openS3() throws -> S3Location {
        guard let text = ProcessInfo.processInfo.environment["KUBIN_TEST_S3_OPEN_URL"],
            let location = S3Location(url: text)
        else { throw Missing(variable: "KUBIN_TEST_S3_OPEN_URL") }
        return location
    }

    /// The ClickHouse server (its HTTP interface).
    package static func clickHouse() throws -> ClickHouseLocation {
        guard let text = ProcessInfo.processInfo.environment["KUBIN_TEST_CLICKHOUSE_URL"],
            let location = ClickHouseLocation(url: text)
        else { throw Missing(variable: "KUBIN_TEST_CLICKHOUSE_URL") }
        return location
    }

    /// The URL in `variable` (a `KUBIN_TEST_*_URL`), changed by `edit`: a setting's text for a gateway under test.
    package static func url(_ variable: String, _ edit: (inout URLComponents) -> Void = { _ in }) throws -> String {
        guard let text = ProcessInfo.processInfo.environment[variable], var components = URLComponents(string: text)
        else { throw Missing(variable: variable) }
        edit(&components)
        return components.string ?? text
    }

    /// Runs `body` with a new, empty database of the test server, dropped afterwards.
    package static func withPostgresDatabase(_ body: (PostgresLocation) async throws -> Void) async throws {
        let server = try postgres()
        let name = "kubin_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await administer(server, "CREATE DATABASE \(name)")
        var location = server
        location.database = name
        do {
            try await body(location)
        } catch {
            try? await administer(server, "DROP DATABASE \(name) WITH (FORCE)")
            throw error
        }
        try await administer(server, "DROP DATABASE \(name) WITH (FORCE)")
    }

    private static func administer(_ server: PostgresLocation, _ sql: String) async throws {
        let logger = Logger(label: "test-postgres")
        let connection = try await PostgresConnection.connect(
            configuration: try server.connectionConfiguration(), id: 1, logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

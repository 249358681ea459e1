import Foundation

/// Where a ClickHouse server is: `clickhouse://user[:password]@host:port/database` (the HTTP interface's port);
/// `clickhouses://` for HTTPS. The password never appears in ``description``.
package struct ClickHouseLocation: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int
    package var username: String
    package var password: String?
    package var database: String
    package var usesTLS: Bool

    package init?(url text: String) {
        guard let url = ServerURL(text, schemes: ["clickhouse", "clickhouses"]),
            url.path.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" })
        else { return nil }
        self.usesTLS = url.scheme == "clickhouses"
        self.host = url.host
        self.port = url.port ?? (usesTLS ? 8443 : 8123)
        self.username = url.user ?? "default"
        self.password = url.password
        self.database = url.path.isEmpty ? "default" : url.path
    }

    package var description: String {
        "\(usesTLS ? "clickhouses" : "clickhouse")://\(username)@\(host):\(port)/\(database)"
    }
}

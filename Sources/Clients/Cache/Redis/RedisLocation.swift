import Foundation

/// Where a Redis server is, parsed from `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS).
/// The password never appears in ``description``.
package struct RedisLocation: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int
    package var username: String?
    package var password: String?
    package var database: Int
    package var usesTLS: Bool

    /// Parses the URL; nil when it is not a Redis URL.
    package init?(url text: String) {
        guard let url = ServerURL(text, schemes: ["redis", "rediss"]), url.path.isEmpty || Int(url.path) != nil
        else { return nil }
        self.host = url.host
        self.port = url.port ?? 6379
        self.username = url.user?.isEmpty == true ? nil : url.user
        self.password = url.password
        self.database = Int(url.path) ?? 0
        self.usesTLS = url.scheme == "rediss"
    }

    package var description: String {
        "\(usesTLS ? "rediss" : "redis")://\(username.map { $0 + "@" } ?? "")\(host):\(port)/\(database)"
    }
}

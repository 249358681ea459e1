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
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            ["redis", "rediss"].contains(scheme), let host = components.host, !host.isEmpty
        else { return nil }
        let path = components.path.drop { $0 == "/" }
        guard path.isEmpty || Int(path) != nil else { return nil }
        self.host = host
        self.port = components.port ?? 6379
        let user = components.user.flatMap { $0.removingPercentEncoding }
        self.username = user?.isEmpty == true ? nil : user
        self.password = components.password.flatMap { $0.removingPercentEncoding }
        self.database = Int(path) ?? 0
        self.usesTLS = scheme == "rediss"
    }

    package var description: String {
        "\(usesTLS ? "rediss" : "redis")://\(username.map { $0 + "@" } ?? "")\(host):\(port)/\(database)"
    }
}

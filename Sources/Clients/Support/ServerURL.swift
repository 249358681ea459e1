import Foundation

/// What every server URL of a store has: `scheme://[user[:password]@]host[:port][/path][?query]`, with the user and
/// password percent-decoded (a password may hold `@` or `/` written as `%40`, `%2F`).
struct ServerURL {
    var scheme: String
    var host: String
    var port: Int?
    var user: String?
    var password: String?
    /// The path without its leading slashes.
    var path: String
    private var queryItems: [URLQueryItem]

    /// Nil unless `text` is a URL of one of `schemes` with a host.
    init?(_ text: String, schemes: Set<String>) {
        guard let components = URLComponents(string: text), let scheme = components.scheme, schemes.contains(scheme),
            let host = components.host, !host.isEmpty
        else { return nil }
        self.scheme = scheme
        self.host = host
        self.port = components.port
        self.user = components.user.flatMap { $0.removingPercentEncoding }
        self.password = components.password.flatMap { $0.removingPercentEncoding }
        self.path = String(components.path.drop { $0 == "/" })
        self.queryItems = components.queryItems ?? []
    }

    /// The value of the query parameter `name`, if present.
    func query(_ name: String) -> String? { queryItems.first { $0.name == name }?.value }
}

import Hummingbird
import Synchronization

/// The served routes as method and path template (`/api/v1/snapshots/{id}`), for 405 answers and the contract test.
///
/// Hummingbird applies router middleware only to routes added after it, so the middleware that needs this table is
/// created before the routes exist; the table is filled once, right after registration.
package final class RouteTable: Sendable {
    /// One route.
    package struct Route: Sendable, Hashable {
        /// The HTTP method, for example `GET`.
        package var method: String
        /// The path template with `{name}` for each parameter.
        package var path: String
    }

    /// Each route with its path's segments, split once (every proxied request asks ``methods(matching:)``).
    private let storage = Mutex<[(route: Route, segments: [Substring])]>([])

    /// An empty table, filled by ``record(_:)``.
    init() {}

    /// Every route, in registration order.
    package var routes: [Route] { storage.withLock { $0.map(\.route) } }

    /// Records the routes of `router`.
    func record(_ router: Router<GatewayRequestContext>) {
        let routes = router.routes.map { Route(method: $0.method.rawValue, path: $0.path.description) }
        storage.withLock { storage in
            storage = routes.map { ($0, $0.path.split(separator: "/", omittingEmptySubsequences: true)) }
        }
    }

    /// The methods served at `path`, sorted; empty when no route template matches it.
    func methods(matching path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        let methods = storage.withLock { templates in
            templates.filter { Self.matches($0.segments, segments) }.map(\.route.method)
        }
        return methods.isEmpty ? [] : Set(methods).sorted()
    }

    /// Whether some route serves `path` under some method (the proxy asks for every request it might take).
    func serves(_ path: String) -> Bool {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return storage.withLock { templates in templates.contains { Self.matches($0.segments, segments) } }
    }

    private static func matches(_ template: [Substring], _ segments: [Substring]) -> Bool {
        template.count == segments.count
            && zip(template, segments).allSatisfy { $0.first == "{" && $0.last == "}" || $0 == $1 }
    }
}

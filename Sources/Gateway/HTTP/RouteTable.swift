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

    /// The paths served, as they are now, for the proxy to ask for every request it might take without a lock.
    var paths: ServedPaths { ServedPaths(templates: storage.withLock { $0.map(\.segments) }) }

    fileprivate static func matches(_ template: [Substring], _ segments: [Substring]) -> Bool {
        template.count == segments.count
            && zip(template, segments).allSatisfy { $0.first == "{" && $0.last == "}" || $0 == $1 }
    }
}

/// Whether some route serves a path under some method: the route templates indexed by their first segment, so that
/// a path outside the gateway's own (most proxied ones) is told apart by one dictionary lookup.
struct ServedPaths: Sendable {
    private let byFirstSegment: [Substring: [[Substring]]]
    /// Templates whose first segment is a parameter (or that have none): every path is checked against them.
    private let anyFirstSegment: [[Substring]]

    fileprivate init(templates: [[Substring]]) {
        var byFirstSegment: [Substring: [[Substring]]] = [:]
        var anyFirstSegment: [[Substring]] = []
        for template in templates {
            if let first = template.first, first.first != "{" {
                byFirstSegment[first, default: []].append(template)
            } else {
                anyFirstSegment.append(template)
            }
        }
        self.byFirstSegment = byFirstSegment
        self.anyFirstSegment = anyFirstSegment
    }

    /// Whether some route serves `path`.
    func contains(_ path: String) -> Bool {
        let first = path.drop { $0 == "/" }.prefix { $0 != "/" }
        let candidates = byFirstSegment[first]
        guard candidates != nil || !anyFirstSegment.isEmpty else { return false }
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return (candidates ?? []).contains { RouteTable.matches($0, segments) }
            || anyFirstSegment.contains { RouteTable.matches($0, segments) }
    }
}

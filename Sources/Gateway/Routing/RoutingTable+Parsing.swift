import Foundation
import Orchestrators
import Yams

extension RoutingTable {
    /// Why a routing file was refused: every entry at fault, each named by its place in the file
    /// (`upstreams.reports.balancer`, `routes[2].upstream`).
    package struct Invalid: Error, Sendable, CustomStringConvertible {
        package var problems: [String]
        package var description: String { problems.joined(separator: "; ") }
    }

    /// The largest routing file read: a table is a few kilobytes.
    static let maxFileBytes = 1 << 20

    /// Reads and validates the routing file at `path` (YAML, or JSON, which is YAML too).
    package static func load(path: String) throws(Invalid) -> RoutingTable {
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            if let size = attributes[.size] as? Int, size > maxFileBytes {
                throw Invalid(problems: ["the file holds \(size) bytes; a routing file may hold \(maxFileBytes)"])
            }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as Invalid {
            throw error
        } catch {
            throw Invalid(problems: ["cannot read '\(path)': \(error.localizedDescription)"])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Invalid(problems: ["'\(path)' is not UTF-8 text"])
        }
        return try parse(text)
    }

    /// Validates a routing file's text, reporting every bad entry at once.
    package static func parse(_ text: String) throws(Invalid) -> RoutingTable {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw Invalid(problems: ["not YAML or JSON: \(error)"])
        }
        var reader = TableReader()
        let table = reader.table(root.map { Entry(node: $0, path: "") })
        guard reader.problems.isEmpty, let table else {
            throw Invalid(problems: reader.problems.isEmpty ? ["the file is empty"] : reader.problems)
        }
        return table
    }
}

/// A node of the routing file and its place there.
private struct Entry {
    var node: Node
    var path: String

    func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}

/// Walks the file's nodes, collecting a problem for each bad entry (and going on, so all are reported at once).
private struct TableReader {
    var problems: [String] = []

    mutating func table(_ root: Entry?) -> RoutingTable? {
        guard let root, let fields = mapping(root, keys: ["upstreams", "routes"]) else { return nil }
        var upstreams: [String: RoutingTable.Upstream] = [:]
        if let entry = fields["upstreams"], let named = namedMapping(entry) {
            for (name, entry) in named {
                if let upstream = upstream(name: name, entry) { upstreams[name] = upstream }
            }
        } else if fields["upstreams"] == nil {
            problems.append("upstreams: missing; name at least one upstream")
        }
        var routes: [RoutingTable.Route] = []
        if let entry = fields["routes"], let list = sequence(entry) {
            for item in list {
                if let route = route(item, upstreams: upstreams) { routes.append(route) }
            }
        } else if fields["routes"] == nil {
            problems.append("routes: missing; list at least one route")
        }
        for (prefix, group) in Dictionary(grouping: routes, by: \.pathPrefix) where group.count > 1 {
            problems.append(
                "routes: '\(group[0].name)' and '\(group[1].name)' both have the pathPrefix '\(prefix)'")
        }
        for (name, group) in Dictionary(grouping: routes, by: \.name) where group.count > 1 {
            problems.append("routes: \(group.count) routes are named '\(name)'; names must be unique")
        }
        return RoutingTable(upstreams: upstreams, routes: routes)
    }

    mutating func upstream(name: String, _ entry: Entry) -> RoutingTable.Upstream? {
        guard
            let fields = mapping(
                entry,
                keys: [
                    "instances", "dns", "dnsRefresh", "scheme", "balancer", "healthCheck", "outlierDetection",
                    "timeouts", "tls", "maxConnectionsPerInstance", "retries", "maxRequests", "circuitBreaker",
                ])
        else { return nil }
        let discovery: RoutingTable.Upstream.Discovery?
        let scheme = fields["scheme"].flatMap { choice($0, ["http", "https"]) } ?? "http"
        let refresh = fields["dnsRefresh"].flatMap { duration($0, in: .seconds(1)...(.seconds(3600))) } ?? .seconds(10)
        switch (fields["instances"], fields["dns"]) {
        case (let list?, nil):
            discovery = instances(list).map { .instances($0) }
        case (nil, let dns?):
            discovery = self.dns(dns, scheme: scheme, refresh: refresh)
        case (nil, nil):
            problems.append("\(entry.path): give its instances (a list) or dns (a name to resolve)")
            discovery = nil
        case (_?, _?):
            problems.append("\(entry.path): give instances or dns, not both")
            discovery = nil
        }
        let balancer =
            fields["balancer"].flatMap { value in
                choice(value, BalancerKind.allCases.map(\.rawValue)).flatMap(BalancerKind.init(rawValue:))
            } ?? .roundRobin
        let healthCheck = fields["healthCheck"].flatMap { self.healthCheck($0) }
        let outlier = fields["outlierDetection"].map { self.outlier($0) } ?? OutlierPolicy()
        var connect = Duration.seconds(1)
        var request = Duration.seconds(30)
        var idle = Duration.seconds(60)
        if let timeouts = fields["timeouts"], let values = mapping(timeouts, keys: ["connect", "request", "idle"]) {
            connect = values["connect"].flatMap { duration($0, in: .milliseconds(1)...(.seconds(600))) } ?? connect
            request = values["request"].flatMap { duration($0, in: .milliseconds(1)...(.seconds(86400))) } ?? request
            idle = values["idle"].flatMap { duration($0, in: .milliseconds(1)...(.seconds(86400))) } ?? idle
        }
        var tls = RoutingTable.Upstream.TLS()
        if let entry = fields["tls"],
            let values = mapping(entry, keys: ["caFile", "certificateFile", "privateKeyFile"])
        {
            tls.caFile = values["caFile"].flatMap { file($0) }
            tls.certificateFile = values["certificateFile"].flatMap { file($0) }
            tls.privateKeyFile = values["privateKeyFile"].flatMap { file($0) }
            if (tls.certificateFile == nil) != (tls.privateKeyFile == nil),
                values["certificateFile"] != nil
                    || values["privateKeyFile"] != nil
            {
                problems.append("\(entry.path): give certificateFile and privateKeyFile together")
            }
        }
        let connections = fields["maxConnectionsPerInstance"].flatMap { integer($0, in: 1...10_000) }
        let retry = fields["retries"].map { self.retry($0) } ?? RetryPolicy()
        let maxRequests = fields["maxRequests"].flatMap { integer($0, in: 1...1_000_000) } ?? 1024
        let breaker = fields["circuitBreaker"].map { self.breaker($0) } ?? BreakerPolicy()
        guard let discovery else { return nil }
        return RoutingTable.Upstream(
            name: name, discovery: discovery, balancer: balancer, healthCheck: healthCheck,
            outlierDetection: outlier, connectTimeout: connect, requestTimeout: request, idleTimeout: idle,
            tls: tls,
            maxConnectionsPerInstance: connections, retry: retry, circuitBreaker: breaker, maxRequests: maxRequests)
    }

    /// `circuitBreaker: {window: 10s, minimumCalls: 20, failurePercent: 50, slowCall: 2s, coolDown: 5s, probes: 3}`,
    /// each optional (no `slowCall`: speed does not count).
    mutating func breaker(_ entry: Entry) -> BreakerPolicy {
        var policy = BreakerPolicy()
        guard
            let values = mapping(
                entry, keys: ["window", "minimumCalls", "failurePercent", "slowCall", "coolDown", "probes"])
        else { return policy }
        policy.window =
            values["window"].flatMap { duration($0, in: .milliseconds(10)...(.seconds(3600))) } ?? policy.window
        policy.minimumCalls = values["minimumCalls"].flatMap { integer($0, in: 1...100_000) } ?? policy.minimumCalls
        if let percent = values["failurePercent"].flatMap({ integer($0, in: 1...100) }) {
            policy.failureRatio = Double(percent) / 100
        }
        policy.slowCallThreshold = values["slowCall"].flatMap { duration($0, in: .milliseconds(1)...(.seconds(3600))) }
        policy.coolDown =
            values["coolDown"].flatMap { duration($0, in: .milliseconds(1)...(.seconds(3600))) } ?? policy.coolDown
        policy.probes = values["probes"].flatMap { integer($0, in: 1...1000) } ?? policy.probes
        return policy
    }

    /// `retries: {attempts: 2, backoff: 25ms, maxBackoff: 250ms, budgetPercent: 20}`, each optional.
    mutating func retry(_ entry: Entry) -> RetryPolicy {
        var policy = RetryPolicy()
        guard let values = mapping(entry, keys: ["attempts", "backoff", "maxBackoff", "budgetPercent"]) else {
            return policy
        }
        policy.attempts = values["attempts"].flatMap { integer($0, in: 1...10) } ?? policy.attempts
        policy.backoff = values["backoff"].flatMap { duration($0, in: .zero...(.seconds(60))) } ?? policy.backoff
        policy.maxBackoff =
            values["maxBackoff"].flatMap { duration($0, in: .zero...(.seconds(600))) } ?? policy.maxBackoff
        if let percent = values["budgetPercent"].flatMap({ integer($0, in: 0...100) }) {
            policy.budgetRatio = Double(percent) / 100
        }
        return policy
    }

    mutating func instances(_ entry: Entry) -> [UpstreamState.Instance]? {
        guard let list = sequence(entry) else { return nil }
        guard !list.isEmpty else {
            problems.append("\(entry.path): empty; list at least one instance")
            return nil
        }
        var instances: [UpstreamState.Instance] = []
        for item in list {
            guard let fields = mapping(item, keys: ["url", "weight"]) else { continue }
            let weight = fields["weight"].flatMap { integer($0, in: 1...1000) } ?? 1
            guard let url = fields["url"] else {
                problems.append("\(item.path).url: missing")
                continue
            }
            if let address = instanceURL(url) { instances.append(.init(address: address, weight: weight)) }
        }
        for (address, group) in Dictionary(grouping: instances, by: \.address) where group.count > 1 {
            problems.append("\(entry.path): '\(address)' is listed \(group.count) times")
        }
        return instances
    }

    /// `scheme://host:port` with nothing after it: the form instances are known by.
    mutating func instanceURL(_ entry: Entry) -> String? {
        guard let text = string(entry) else { return nil }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
            components.path.isEmpty || components.path == "/", components.query == nil, components.fragment == nil,
            components.user == nil, components.password == nil
        else {
            problems.append(
                "\(entry.path): '\(text.prefix(200))' is not an instance URL (http:// or https://, a host, an "
                    + "optional port, no path)")
            return nil
        }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else {
            problems.append("\(entry.path): port \(port) is out of range")
            return nil
        }
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(shownHost.lowercased()):\(port)"
    }

    mutating func dns(_ entry: Entry, scheme: String, refresh: Duration) -> RoutingTable.Upstream.Discovery? {
        guard let text = string(entry) else { return nil }
        if text.hasPrefix("_") {
            let labels = text.split(separator: ".", omittingEmptySubsequences: false)
            guard labels.count >= 3, labels[1].hasPrefix("_"), labels.allSatisfy(Self.isLabel) else {
                problems.append("\(entry.path): '\(text.prefix(200))' is not an SRV name (_service._proto.name)")
                return nil
            }
            return .service(name: text, scheme: scheme, refresh: refresh)
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port), text[..<colon].split(separator: ".").allSatisfy(Self.isLabel),
            !text[..<colon].isEmpty
        else {
            problems.append(
                "\(entry.path): '\(text.prefix(200))' is neither host:port (A/AAAA records) nor an SRV name "
                    + "(_service._proto.name)")
            return nil
        }
        return .addresses(host: String(text[..<colon]), port: port, scheme: scheme, refresh: refresh)
    }

    /// A DNS label: letters, digits, '-' and '_' (SRV), 1 to 63 bytes.
    private static func isLabel(_ label: Substring) -> Bool {
        (1...63).contains(label.utf8.count) && label.utf8.allSatisfy(isNameByte)
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }

    mutating func healthCheck(_ entry: Entry) -> HealthCheckPolicy? {
        guard
            let fields = mapping(
                entry, keys: ["path", "interval", "timeout", "healthyThreshold", "unhealthyThreshold"])
        else { return nil }
        let path = fields["path"].flatMap { requestPath($0) } ?? "/healthz"
        return HealthCheckPolicy(
            path: path,
            interval: fields["interval"].flatMap { duration($0, in: .milliseconds(10)...(.seconds(3600))) }
                ?? .seconds(5),
            timeout: fields["timeout"].flatMap { duration($0, in: .milliseconds(10)...(.seconds(600))) } ?? .seconds(1),
            healthyThreshold: fields["healthyThreshold"].flatMap { integer($0, in: 1...100) } ?? 2,
            unhealthyThreshold: fields["unhealthyThreshold"].flatMap { integer($0, in: 1...100) } ?? 2)
    }

    mutating func outlier(_ entry: Entry) -> OutlierPolicy {
        var policy = OutlierPolicy()
        guard
            let fields = mapping(
                entry, keys: ["consecutiveFailures", "baseEjectionTime", "maxEjectedPercent", "maxEjectionTime"])
        else { return policy }
        policy.consecutiveFailures =
            fields["consecutiveFailures"].flatMap { integer($0, in: 1...1000) } ?? policy.consecutiveFailures
        policy.baseEjectionTime =
            fields["baseEjectionTime"].flatMap { duration($0, in: .milliseconds(10)...(.seconds(86400))) }
            ?? policy.baseEjectionTime
        policy.maxEjectedPercent =
            fields["maxEjectedPercent"].flatMap { integer($0, in: 0...100) } ?? policy.maxEjectedPercent
        policy.maxEjectionTime =
            fields["maxEjectionTime"].flatMap { duration($0, in: .milliseconds(10)...(.seconds(86400))) }
            ?? max(policy.maxEjectionTime, policy.baseEjectionTime)
        return policy
    }

    mutating func route(_ entry: Entry, upstreams: [String: RoutingTable.Upstream]) -> RoutingTable.Route? {
        guard
            let fields = mapping(
                entry,
                keys: [
                    "name", "pathPrefix", "methods", "upstream", "rewritePrefix", "auth", "scopes", "rateLimit",
                    "websocket", "forwardAuthorization",
                ])
        else { return nil }
        let name = required(fields, "name", in: entry).flatMap { string($0) }
        let prefix = required(fields, "pathPrefix", in: entry).flatMap { requestPath($0) }
        let upstream = required(fields, "upstream", in: entry).flatMap { string($0) }
        if let upstream, upstreams[upstream] == nil, let entry = fields["upstream"],
            !problems.contains(where: { $0.hasPrefix("upstreams.\(upstream)") })
        {
            problems.append("\(entry.path): '\(upstream.prefix(200))' is not an upstream of this file")
        }
        var methods: [String]?
        if let entry = fields["methods"], let list = sequence(entry) {
            methods = list.compactMap { item in
                guard let method = string(item) else { return nil }
                guard !method.isEmpty, method.utf8.allSatisfy({ (65...90).contains($0) }) else {
                    problems.append("\(item.path): '\(method.prefix(50))' is not a method (GET, POST, ...)")
                    return nil
                }
                return method
            }
            if methods?.isEmpty == true { problems.append("\(entry.path): empty; leave it out to allow every method") }
        }
        let auth =
            fields["auth"].flatMap { value in
                choice(value, RoutingTable.Route.Auth.allCases.map(\.rawValue))
                    .flatMap(RoutingTable.Route.Auth.init(rawValue:))
            } ?? .required
        let scopes = fields["scopes"].flatMap { sequence($0) }?.compactMap { string($0) } ?? []
        if auth == .none, !scopes.isEmpty, let entry = fields["scopes"] {
            problems.append("\(entry.path): a route with auth none has no caller whose scopes could be checked")
        }
        var rateLimit = RoutingTable.Route.RateLimit.byMethod
        if let value = fields["rateLimit"],
            let choice = choice(value, RateLimiter.RouteClass.allCases.map(\.rawValue) + ["off"])
        {
            rateLimit = RateLimiter.RouteClass(rawValue: choice).map { .routeClass($0) } ?? .off
        }
        let rewrite = fields["rewritePrefix"].flatMap { requestPath($0) }
        let websocket = fields["websocket"].flatMap { flag($0) } ?? false
        let forwardsAuthorization = fields["forwardAuthorization"].flatMap { flag($0) } ?? false
        guard let name, let prefix, let upstream else { return nil }
        return RoutingTable.Route(
            name: name, pathPrefix: prefix, methods: methods, upstream: upstream, rewritePrefix: rewrite, auth: auth,
            scopes: scopes, rateLimit: rateLimit, isWebSocket: websocket, forwardsAuthorization: forwardsAuthorization)
    }

    // MARK: Shapes

    mutating func required(_ fields: [String: Entry], _ key: String, in entry: Entry) -> Entry? {
        if let value = fields[key] { return value }
        problems.append("\(entry.child(key)): missing")
        return nil
    }

    /// The values of a mapping by key, with a problem for each key not in `keys`.
    mutating func mapping(_ entry: Entry, keys: Set<String>) -> [String: Entry]? {
        guard case .mapping(let mapping) = entry.node else {
            problems.append("\(entry.path.isEmpty ? "the file" : entry.path): expected a mapping")
            return nil
        }
        var fields: [String: Entry] = [:]
        for (key, value) in mapping {
            let name = key.string ?? ""
            guard keys.contains(name) else {
                problems.append(
                    "\(entry.child(name.isEmpty ? "?" : String(name.prefix(100)))): unknown key; expected one of "
                        + keys.sorted().joined(separator: ", "))
                continue
            }
            fields[name] = Entry(node: value, path: entry.child(name))
        }
        return fields
    }

    /// A mapping whose keys are names the file chooses (the upstreams).
    mutating func namedMapping(_ entry: Entry) -> [(String, Entry)]? {
        guard case .mapping(let mapping) = entry.node else {
            problems.append("\(entry.path): expected a mapping of names to upstreams")
            return nil
        }
        return mapping.compactMap { key, value in
            guard let name = key.string, Self.isName(name) else {
                problems.append(
                    "\(entry.path): '\((key.string ?? "?").prefix(100))' is not an upstream name (letters, digits, "
                        + "'-' and '_', up to 64)")
                return nil
            }
            return (name, Entry(node: value, path: entry.child(name)))
        }
    }

    static func isName(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy(isNameByte)
    }

    mutating func sequence(_ entry: Entry) -> [Entry]? {
        guard case .sequence(let sequence) = entry.node else {
            problems.append("\(entry.path): expected a list")
            return nil
        }
        return sequence.enumerated().map { Entry(node: $1, path: "\(entry.path)[\($0)]") }
    }

    mutating func string(_ entry: Entry) -> String? {
        guard case .scalar(let scalar) = entry.node else {
            problems.append("\(entry.path): expected a text")
            return nil
        }
        return scalar.string
    }

    /// The value `parse` makes of the entry's text; nil, with a problem saying it is not `expected`, when it makes
    /// none.
    mutating func value<Value>(
        _ entry: Entry, _ expected: @autoclosure () -> String, _ parse: (String) -> Value?
    ) -> Value? {
        guard let text = string(entry) else { return nil }
        guard let value = parse(text) else {
            problems.append("\(entry.path): '\(text.prefix(100))' is not \(expected())")
            return nil
        }
        return value
    }

    mutating func choice(_ entry: Entry, _ allowed: [String]) -> String? {
        value(entry, "one of \(allowed.joined(separator: ", "))") { allowed.contains($0) ? $0 : nil }
    }

    mutating func integer(_ entry: Entry, in range: ClosedRange<Int>) -> Int? {
        value(entry, "a whole number from \(range.lowerBound) to \(range.upperBound)") {
            Int($0).flatMap { range.contains($0) ? $0 : nil }
        }
    }

    mutating func duration(_ entry: Entry, in range: ClosedRange<Duration>) -> Duration? {
        value(
            entry,
            "a duration from \(SettingValues.text(of: range.lowerBound)) to \(SettingValues.text(of: range.upperBound))"
                + " (500ms, 2s, 5m, 1h)"
        ) { SettingValues.duration($0).flatMap { range.contains($0) ? $0 : nil } }
    }

    mutating func flag(_ entry: Entry) -> Bool? {
        value(entry, "true or false") { ["true": true, "false": false][$0] }
    }

    /// An absolute request path with no query, fragment, dot segment or control character.
    mutating func requestPath(_ entry: Entry) -> String? {
        value(
            entry,
            "a path (it starts with '/', has no query, no '.' or '..' segment, no space or control character)"
        ) { text in
            let segments = text.split(separator: "/", omittingEmptySubsequences: false)
            let isPath =
                text.hasPrefix("/") && text.utf8.count <= 1024
                && text.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
                && !segments.contains { $0 == "." || $0 == ".." }
            return isPath ? text : nil
        }
    }

    mutating func file(_ entry: Entry) -> String? {
        guard let path = string(entry) else { return nil }
        guard FileManager.default.isReadableFile(atPath: path) else {
            problems.append("\(entry.path): cannot read '\(path.prefix(200))'")
            return nil
        }
        return path
    }
}

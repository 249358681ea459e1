import Foundation
import HTTPTypes
import KubinModel
import NIOHTTP1

/// What the proxy changes in the headers it passes on, both ways: a pure function of the headers and the request's
/// facts, so every rule is tested without sockets.
enum ProxyHeaders {
    /// The request's facts the upstream is told about.
    struct Facts {
        /// The client's address as the gateway saw it (`192.0.2.7`, `::1`); nil on a Unix socket.
        var peer: String?
        /// `http` or `https`, as the client reached the gateway.
        var scheme: String
        /// The `Host` the client asked for.
        var host: String?
        var requestID: String
        /// The verified caller; nil on routes without authentication.
        var principal: Principal?
        /// Whether the caller's `Authorization` goes upstream.
        var forwardsAuthorization: Bool
        /// Whether the peer is a trusted proxy, whose forwarding headers are kept and extended.
        var isPeerTrusted = false
        /// Whether `Connection: Upgrade` and `Upgrade` go upstream (a WebSocket route).
        var keepsUpgrade = false
    }

    /// The identity headers the gateway sets; a client's copies never pass.
    static let tenant = HTTPField.Name("X-Kubin-Tenant")!
    static let subject = HTTPField.Name("X-Kubin-Subject")!
    static let scopes = HTTPField.Name("X-Kubin-Scopes")!
    static let forwarded = HTTPField.Name("Forwarded")!
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    static let forwardedHost = HTTPField.Name("X-Forwarded-Host")!
    static let requestID = HTTPField.Name("X-Request-ID")!
    static let keepAlive = HTTPField.Name("Keep-Alive")!
    static let proxyConnection = HTTPField.Name("Proxy-Connection")!

    /// Headers a client may not set for the upstream: the gateway's identity and forwarding headers.
    private static let replaced: Set<HTTPField.Name> = [
        tenant, subject, scopes, forwarded, forwardedFor, forwardedProto, forwardedHost, requestID,
    ]

    /// Forwarding headers a trusted proxy's request keeps.
    private static let forwarding: Set<HTTPField.Name> = [forwarded, forwardedFor, forwardedProto, forwardedHost]

    /// The headers sent upstream for a request with `fields`. The client's forwarding headers are replaced, unless
    /// the peer is a trusted proxy: then `X-Forwarded-For` and `Forwarded` get the peer appended, and the
    /// `X-Forwarded-Proto` and `X-Forwarded-Host` it sent stay.
    static func request(_ fields: HTTPFields, facts: Facts) -> HTTPHeaders {
        let hopByHop = hopByHopNames(in: fields, keepingUpgrade: facts.keepsUpgrade)
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 8)
        let trusted = facts.isPeerTrusted
        for field in fields where !hopByHop.contains(field.name) {
            guard !replaced.contains(field.name) || (trusted && forwarding.contains(field.name)) else { continue }
            if field.name == .authorization && !facts.forwardsAuthorization { continue }
            headers.add(name: field.name.rawName, value: field.value)
        }
        if fields[.transferEncoding] != nil, fields[.contentLength] == nil {
            // The body keeps its framing: chunked as it came (the client's coding itself is hop-by-hop).
            headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        if facts.keepsUpgrade, fields[.upgrade] != nil {
            headers.add(name: "Connection", value: "Upgrade")
        }
        headers.add(name: requestID.rawName, value: facts.requestID)
        if let principal = facts.principal {
            headers.add(name: tenant.rawName, value: principal.tenant.rawValue)
            headers.add(name: subject.rawName, value: principal.subject)
            headers.add(name: scopes.rawName, value: principal.scopeNames.sorted().joined(separator: " "))
        }
        var forwardedElement: [String] = []
        if let peer = facts.peer {
            append(peer, to: forwardedFor.rawName, in: &headers)
            forwardedElement.append("for=\(peer.contains(":") ? "\"[\(peer)]\"" : peer)")
        }
        if !headers.contains(name: forwardedProto.rawName) {
            headers.add(name: forwardedProto.rawName, value: facts.scheme)
        }
        if let host = facts.host, isForwardable(host) {
            if !headers.contains(name: forwardedHost.rawName) { headers.add(name: forwardedHost.rawName, value: host) }
            forwardedElement.append("host=\"\(host)\"")
        }
        forwardedElement.append("proto=\(facts.scheme)")
        append(forwardedElement.joined(separator: ";"), to: forwarded.rawName, in: &headers)
        return headers
    }

    /// Appends `value` to the list header `name` (one line, comma-separated), or sets it.
    private static func append(_ value: String, to name: String, in headers: inout HTTPHeaders) {
        let existing = headers[name]
        headers.remove(name: name)
        headers.add(name: name, value: (existing + [value]).joined(separator: ", "))
    }

    /// The headers of the upstream's answer as the client gets them: hop-by-hop ones removed (a body without
    /// `Content-Length` goes to the client chunked).
    static func response(_ headers: HTTPHeaders, keepingUpgrade: Bool = false) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(headers.count)
        for (name, value) in headers {
            guard let name = HTTPField.Name(name) else { continue }
            fields.append(HTTPField(name: name, value: value))
        }
        let hopByHop = hopByHopNames(in: fields, keepingUpgrade: keepingUpgrade)
        fields.removeAll { hopByHop.contains($0.name) }
        return fields
    }

    /// RFC 9110 §7.6.1: `Connection`, the fields it names, and the usual connection-specific fields.
    private static func hopByHopNames(in fields: HTTPFields, keepingUpgrade: Bool) -> Set<HTTPField.Name> {
        var names: Set<HTTPField.Name> = [.connection, keepAlive, proxyConnection, .te, .transferEncoding, .upgrade]
        for value in fields[values: .connection] {
            for token in value.split(separator: ",") {
                if let name = HTTPField.Name(token.trimmingCharacters(in: .whitespaces)) { names.insert(name) }
            }
        }
        if keepingUpgrade { names.remove(.upgrade) }
        return names
    }

    /// A Host value safe to quote in `Forwarded`: host characters and a port only.
    private static func isForwardable(_ host: String) -> Bool {
        !host.isEmpty && host.utf8.count <= 255
            && host.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }
}

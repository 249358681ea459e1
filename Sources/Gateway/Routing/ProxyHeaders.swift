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

    /// The headers sent upstream for a request with `fields`. The client's forwarding headers are replaced, not
    /// extended: the gateway trusts no proxy in front of it.
    static func request(_ fields: HTTPFields, facts: Facts) -> HTTPHeaders {
        let hopByHop = hopByHopNames(in: fields, keepingUpgrade: facts.keepsUpgrade)
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 8)
        for field in fields where !hopByHop.contains(field.name) && !replaced.contains(field.name) {
            if field.name == .authorization && !facts.forwardsAuthorization { continue }
            if field.name == .contentLength { continue }
            headers.add(name: field.name.rawName, value: field.value)
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
            headers.add(name: forwardedFor.rawName, value: peer)
            forwardedElement.append("for=\(peer.contains(":") ? "\"[\(peer)]\"" : peer)")
        }
        headers.add(name: forwardedProto.rawName, value: facts.scheme)
        if let host = facts.host, isForwardable(host) {
            headers.add(name: forwardedHost.rawName, value: host)
            forwardedElement.append("host=\"\(host)\"")
        }
        forwardedElement.append("proto=\(facts.scheme)")
        headers.add(name: forwarded.rawName, value: forwardedElement.joined(separator: ";"))
        return headers
    }

    /// The headers of the upstream's answer as the client gets them: hop-by-hop ones and the framing removed (the
    /// gateway frames the answer itself).
    static func response(_ headers: HTTPHeaders, keepingUpgrade: Bool = false) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(headers.count)
        for (name, value) in headers {
            guard let name = HTTPField.Name(name) else { continue }
            fields.append(HTTPField(name: name, value: value))
        }
        let hopByHop = hopByHopNames(in: fields, keepingUpgrade: keepingUpgrade)
        fields.removeAll { hopByHop.contains($0.name) || $0.name == .contentLength }
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

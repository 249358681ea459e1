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

    /// The headers sent upstream for a request with `fields`. The client's forwarding headers are replaced, unless
    /// the peer is a trusted proxy: then `X-Forwarded-For` and `Forwarded` get the peer appended, and the
    /// `X-Forwarded-Proto` and `X-Forwarded-Host` it sent stay.
    static func request(_ fields: HTTPFields, facts: Facts) -> HTTPHeaders {
        let hopByHop = HopByHop(connection: fields[values: .connection], keepingUpgrade: facts.keepsUpgrade)
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 8)
        // A trusted proxy's forwarding headers, extended below; one pass, no lookups in what is being built.
        var forwardedFor: [String] = []
        var forwardedElements: [String] = []
        var proto = facts.scheme
        var forwardedHost = facts.host.flatMap { isForwardable($0) ? $0 : nil }
        for field in fields where !hopByHop.contains(field.name) {
            if replaced.contains(field.name) {
                guard facts.isPeerTrusted else { continue }
                switch field.name {
                case Self.forwardedFor: forwardedFor.append(field.value)
                case Self.forwarded: forwardedElements.append(field.value)
                case Self.forwardedProto: proto = field.value
                case Self.forwardedHost: forwardedHost = field.value
                default: break
                }
                continue
            }
            if field.name == .authorization && !facts.forwardsAuthorization { continue }
            // The gateway answers `Expect: 100-continue` itself, once it is ready for the body (as nginx does).
            if field.name == .expect { continue }
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
        var element: [String] = []
        if let peer = facts.peer {
            forwardedFor.append(peer)
            element.append("for=\(peer.utf8.contains(UInt8(ascii: ":")) ? "\"[\(peer)]\"" : peer)")
        }
        if let host = facts.host, isForwardable(host) { element.append("host=\"\(host)\"") }
        element.append("proto=\(facts.scheme)")
        forwardedElements.append(element.joined(separator: ";"))
        if !forwardedFor.isEmpty {
            headers.add(name: Self.forwardedFor.rawName, value: forwardedFor.joined(separator: ", "))
        }
        headers.add(name: forwardedProtoName, value: proto)
        if let forwardedHost { headers.add(name: Self.forwardedHost.rawName, value: forwardedHost) }
        headers.add(name: forwarded.rawName, value: forwardedElements.joined(separator: ", "))
        return headers
    }

    private static let forwardedProtoName = forwardedProto.rawName

    /// The headers of the upstream's answer as the client gets them: hop-by-hop ones removed (a body without
    /// `Content-Length` goes to the client chunked).
    static func response(_ headers: HTTPHeaders, keepingUpgrade: Bool = false) -> HTTPFields {
        let hopByHop = HopByHop(connection: headers["connection"], keepingUpgrade: keepingUpgrade)
        var fields = HTTPFields()
        fields.reserveCapacity(headers.count)
        for (name, value) in headers {
            guard let name = HTTPField.Name(name), !hopByHop.contains(name) else { continue }
            fields.append(HTTPField(name: name, value: value))
        }
        return fields
    }

    /// RFC 9110 §7.6.1: `Connection`, the fields it names, and the usual connection-specific fields. A check per
    /// field, not a set built per message: every proxied message passes here twice.
    private struct HopByHop {
        private var named: [HTTPField.Name] = []
        private let keepsUpgrade: Bool

        /// `connection`: the values of the message's `Connection` fields.
        init(connection: [String], keepingUpgrade: Bool) {
            keepsUpgrade = keepingUpgrade
            for value in connection {
                for token in value.utf8.split(separator: UInt8(ascii: ",")) {
                    // On bytes, with no string made: nearly every message has `Connection: keep-alive`.
                    guard let start = token.firstIndex(where: { $0 != 32 && $0 != 9 }),
                        let end = token.lastIndex(where: { $0 != 32 && $0 != 9 })
                    else { continue }
                    let trimmed = token[start...end]
                    guard !Self.connectionOptions.contains(where: { Self.equalsIgnoringCase(trimmed, $0) }) else {
                        continue
                    }
                    if let name = HTTPField.Name(String(decoding: trimmed, as: UTF8.self)) { named.append(name) }
                }
            }
        }

        /// `Connection` tokens that are options, or fields removed anyway, in lower case.
        private static let connectionOptions = ["keep-alive", "close", "upgrade"].map { Array($0.utf8) }

        private static func equalsIgnoringCase(_ bytes: Substring.UTF8View.SubSequence, _ lower: [UInt8]) -> Bool {
            bytes.count == lower.count
                && zip(bytes, lower).allSatisfy { byte, expected in
                    (65...90).contains(byte) ? byte + 32 == expected : byte == expected
                }
        }

        func contains(_ name: HTTPField.Name) -> Bool {
            switch name {
            case .connection, ProxyHeaders.keepAlive, ProxyHeaders.proxyConnection, .te, .transferEncoding: true
            case .upgrade: !keepsUpgrade
            default: named.contains(name)
            }
        }
    }

    /// A Host value safe to quote in `Forwarded`: host characters and a port only.
    private static func isForwardable(_ host: String) -> Bool {
        !host.isEmpty && host.utf8.count <= 255
            && host.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }
}

import HTTPTypes
import KubinModel
import NIOHTTP1
import Testing

@testable import Gateway

@Suite struct ProxyHeadersTests {
    private let principal = Principal(
        subject: "alice", tenant: TenantID(validating: "acme")!, scopes: [.snapshotsRead], method: .jwt,
        otherScopes: ["reports:read"])

    private func facts(
        peer: String? = "192.0.2.7", principal: Principal? = nil, authorization: Bool = false
    )
        -> ProxyHeaders.Facts
    {
        .init(
            peer: peer, scheme: "https", host: "kubin.example:8443", requestID: "req-1", principal: principal,
            forwardsAuthorization: authorization)
    }

    private func fields(_ pairs: [(String, String)]) -> HTTPFields {
        HTTPFields(pairs.map { HTTPField(name: HTTPField.Name($0.0)!, value: $0.1) })
    }

    @Test func hopByHopHeadersAndThoseConnectionNamesStayBehind() {
        let sent = ProxyHeaders.request(
            fields([
                ("Connection", "keep-alive, X-Secret-Hop"), ("X-Secret-Hop", "1"), ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"), ("Transfer-Encoding", "chunked"), ("Upgrade", "h2c"),
                ("Proxy-Connection", "keep-alive"), ("Accept", "application/json"), ("Content-Length", "3"),
            ]), facts: facts())
        for name in [
            "Connection", "X-Secret-Hop", "Keep-Alive", "TE", "Transfer-Encoding", "Upgrade", "Proxy-Connection",
        ] {
            #expect(!sent.contains(name: name), "\(name)")
        }
        #expect(sent["Accept"] == ["application/json"])
        #expect(sent["Content-Length"] == ["3"])
    }

    @Test func aChunkedBodyStaysChunkedWhateverTheClientsCodingSaid() {
        let sent = ProxyHeaders.request(
            fields([("Transfer-Encoding", "chunked"), ("Connection", "Transfer-Encoding")]), facts: facts())
        #expect(sent["Transfer-Encoding"] == ["chunked"])
        #expect(!sent.contains(name: "Content-Length"))
    }

    @Test func forwardingAndIdentityHeadersAreTheGatewaysNotTheClients() {
        let sent = ProxyHeaders.request(
            fields([
                ("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=6.6.6.6"), ("X-Forwarded-Host", "evil"),
                ("X-Forwarded-Proto", "gopher"), ("X-Kubin-Tenant", "globex"), ("X-Kubin-Subject", "root"),
                ("X-Kubin-Scopes", "everything"), ("X-Request-ID", "spoofed"), ("Authorization", "Bearer abc"),
            ]), facts: facts(principal: principal))
        #expect(sent["X-Forwarded-For"] == ["192.0.2.7"])
        #expect(sent["X-Forwarded-Proto"] == ["https"])
        #expect(sent["X-Forwarded-Host"] == ["kubin.example:8443"])
        #expect(sent["Forwarded"] == ["for=192.0.2.7;host=\"kubin.example:8443\";proto=https"])
        #expect(sent["X-Kubin-Tenant"] == ["acme"])
        #expect(sent["X-Kubin-Subject"] == ["alice"])
        #expect(sent["X-Kubin-Scopes"] == ["reports:read snapshots:read"])
        #expect(sent["X-Request-ID"] == ["req-1"])
        #expect(!sent.contains(name: "Authorization"))
    }

    @Test func withoutACallerNoIdentityPassesAtAll() {
        let sent = ProxyHeaders.request(
            fields([("X-Kubin-Tenant", "globex"), ("x-kubin-subject", "root")]), facts: facts())
        #expect(!sent.contains(name: "X-Kubin-Tenant"))
        #expect(!sent.contains(name: "X-Kubin-Subject"))
    }

    @Test func authorizationPassesOnlyWhenTheRouteSaysSo() {
        let sent = ProxyHeaders.request(fields([("Authorization", "Bearer abc")]), facts: facts(authorization: true))
        #expect(sent["Authorization"] == ["Bearer abc"])
    }

    @Test func anIPv6PeerIsQuotedInForwarded() {
        let sent = ProxyHeaders.request(fields([]), facts: facts(peer: "::1"))
        #expect(sent["X-Forwarded-For"] == ["::1"])
        #expect(sent["Forwarded"].first?.hasPrefix("for=\"[::1]\";") == true)
    }

    @Test func theAnswersHopByHopHeadersStayBehindAndItsLengthPasses() {
        let answer = ProxyHeaders.response(
            HTTPHeaders([
                ("Connection", "close, X-Hop"), ("X-Hop", "1"), ("Transfer-Encoding", "chunked"),
                ("Keep-Alive", "timeout=1"), ("Content-Type", "text/plain"), ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
            ]))
        #expect(answer.map(\.name.rawName) == ["Content-Type", "Set-Cookie", "Set-Cookie"])
        let framed = ProxyHeaders.response(HTTPHeaders([("Content-Length", "10"), ("Connection", "keep-alive")]))
        #expect(framed.map(\.name.rawName) == ["Content-Length"])
    }
}

@Suite struct TrustedProxyTests {
    @Test func aTrustedPeersForwardingHeadersAreKeptAndExtended() {
        let fields = HTTPFields([
            HTTPField(name: HTTPField.Name("X-Forwarded-For")!, value: "203.0.113.9"),
            HTTPField(name: HTTPField.Name("Forwarded")!, value: "for=203.0.113.9;proto=https"),
            HTTPField(name: HTTPField.Name("X-Forwarded-Proto")!, value: "https"),
            HTTPField(name: HTTPField.Name("X-Forwarded-Host")!, value: "kubin.example"),
            HTTPField(name: HTTPField.Name("X-Kubin-Tenant")!, value: "globex"),
        ])
        var facts = ProxyHeaders.Facts(
            peer: "10.1.2.3", scheme: "http", host: "gateway:8080", requestID: "r", principal: nil,
            forwardsAuthorization: false, isPeerTrusted: true)
        let kept = ProxyHeaders.request(fields, facts: facts)
        #expect(kept["X-Forwarded-For"] == ["203.0.113.9, 10.1.2.3"])
        #expect(kept["Forwarded"] == ["for=203.0.113.9;proto=https, for=10.1.2.3;host=\"gateway:8080\";proto=http"])
        #expect(kept["X-Forwarded-Proto"] == ["https"])
        #expect(kept["X-Forwarded-Host"] == ["kubin.example"])
        // Identity headers are never a proxy's to set.
        #expect(!kept.contains(name: "X-Kubin-Tenant"))
        facts.isPeerTrusted = false
        let replaced = ProxyHeaders.request(fields, facts: facts)
        #expect(replaced["X-Forwarded-For"] == ["10.1.2.3"])
        #expect(replaced["X-Forwarded-Proto"] == ["http"])
        #expect(replaced["X-Forwarded-Host"] == ["gateway:8080"])
    }

    @Test func rangesMatchTheirAddressesOnly() throws {
        let v4 = try #require(AddressRange("10.0.0.0/8"))
        #expect(v4.contains("10.200.3.4"))
        #expect(!v4.contains("11.0.0.1"))
        #expect(!v4.contains("::ffff:10.0.0.1"))
        #expect(!v4.contains("not an address"))
        let odd = try #require(AddressRange("192.168.1.128/25"))
        #expect(odd.contains("192.168.1.200") && !odd.contains("192.168.1.127"))
        let v6 = try #require(AddressRange("fd00::/8"))
        #expect(v6.contains("fd12:3456::1") && !v6.contains("fe80::1") && !v6.contains("10.0.0.1"))
        #expect(AddressRange("127.0.0.1")?.contains("127.0.0.1") == true)
        #expect(AddressRange("127.0.0.1")?.contains("127.0.0.2") == false)
        #expect(AddressRange("0.0.0.0/0")?.contains("8.8.8.8") == true)
        for bad in ["10.0.0.0/33", "fd00::/129", "10.0.0/8", "example.com", "10.0.0.1/", "/8", ""] {
            #expect(AddressRange(bad) == nil, "\(bad)")
        }
    }

    @Test func aBadTrustedProxyStopsTheStartNamingIt() throws {
        #expect {
            try GatewayConfiguration(raw: ["routing.trustedProxies": "10.0.0.0/8, proxy.example"])
        } throws: { error in
            (error as? ConfigurationError)?.problems.contains {
                $0.key == "routing.trustedProxies" && $0.message.contains("'proxy.example' is neither")
            } == true
        }
        let configuration = try GatewayConfiguration(raw: ["routing.trustedProxies": "10.0.0.0/8, ::1"])
        #expect(configuration.routing.trustedProxies.count == 2)
    }
}

import Foundation
import TestSupport
import Testing

@testable import Gateway

/// DNS discovery against a DNS server on loopback (Python's dnslib) whose answers the test changes.
@Suite struct DiscoveryTests {
    /// A DNS server answering A, AAAA and SRV questions from a JSON file (name → records), read for every question.
    final class AnswerServer: Sendable {
        private let program: BackgroundPython
        let path: String

        private static let script = """
            import json, sys, threading
            from dnslib import A, AAAA, QTYPE, RR, SRV
            from dnslib.server import BaseResolver, DNSServer
            path = sys.argv[1]
            class Answers(BaseResolver):
                def resolve(self, request, handler):
                    reply = request.reply()
                    name, kind = str(request.q.qname).rstrip('.'), QTYPE[request.q.qtype]
                    for record in json.load(open(path)).get(name, []):
                        if record['type'] != kind:
                            continue
                        data = {'A': lambda r: A(r['address']), 'AAAA': lambda r: AAAA(r['address']),
                                'SRV': lambda r: SRV(r['priority'], r['weight'], r['port'], r['target'])}[kind](record)
                        reply.add_answer(RR(name, getattr(QTYPE, kind), rdata=data, ttl=1))
                    return reply
            server = DNSServer(Answers(), port=0, address='127.0.0.1')
            server.start_thread()
            print(server.server.server_address[1], flush=True)
            threading.Event().wait()
            """

        init(answers: [String: [[String: Any]]]) throws {
            path = NSTemporaryDirectory() + "dns-answers-\(UUID().uuidString).json"
            try AnswerServer.write(answers, to: path)
            program = try BackgroundPython(script: Self.script, arguments: [path])
        }

        var port: Int { program.port }

        func answer(_ answers: [String: [[String: Any]]]) throws { try Self.write(answers, to: path) }

        func stop() {
            _ = program.stop()
            try? FileManager.default.removeItem(atPath: path)
        }

        private static func write(_ answers: [String: [[String: Any]]], to path: String) throws {
            let data = try JSONSerialization.data(withJSONObject: answers)
            // Atomically: the server reads the file for every question.
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        }
    }

    @Test func instancesFollowTheAnswersOfAAndSRVRecords() async throws {
        try await TestUpstream.with(["a"]) { first in
            let port = first[0].port
            try await TestUpstream.with(["b"], hosts: ["127.0.0.2"], ports: [port]) { _ in
                let dns = try AnswerServer(answers: [
                    "svc.kubin.test": [["type": "A", "address": "127.0.0.1"]],
                    "_http._tcp.svc.kubin.test": [
                        ["type": "SRV", "priority": 10, "weight": 1, "port": port, "target": "one.kubin.test"],
                        ["type": "SRV", "priority": 20, "weight": 1, "port": port, "target": "two.kubin.test"],
                    ],
                    "one.kubin.test": [["type": "A", "address": "127.0.0.1"]],
                    "two.kubin.test": [["type": "A", "address": "127.0.0.2"]],
                ])
                defer { dns.stop() }
                let table = """
                    upstreams:
                      byName: {dns: 'svc.kubin.test:\(port)', dnsRefresh: 1s}
                      byService: {dns: _http._tcp.svc.kubin.test, dnsRefresh: 1s}
                    routes:
                      - {name: byName, pathPrefix: /name, upstream: byName}
                      - {name: byService, pathPrefix: /service, upstream: byService}
                    """
                let path = NSTemporaryDirectory() + "routing-\(UUID().uuidString).yaml"
                defer { try? FileManager.default.removeItem(atPath: path) }
                try table.write(toFile: path, atomically: true, encoding: .utf8)
                try await withLiveGateway(["routing.file": path, "routing.dnsServer": "127.0.0.1:\(dns.port)"]) {
                    gateway in
                    func instance(_ path: String) async throws -> String? {
                        let answer = try await gateway.send(.GET, path)
                        return answer.headers.first(name: "X-Upstream")
                    }
                    try await gateway.eventually("A records lead to a") { try await instance("/name") == "a" }
                    // The lower SRV priority is used while it has targets.
                    try await gateway.eventually("SRV records lead to a") { try await instance("/service") == "a" }
                    try dns.answer([
                        "svc.kubin.test": [["type": "A", "address": "127.0.0.2"]],
                        "_http._tcp.svc.kubin.test": [
                            ["type": "SRV", "priority": 20, "weight": 1, "port": port, "target": "two.kubin.test"]
                        ],
                        "two.kubin.test": [["type": "A", "address": "127.0.0.2"]],
                    ])
                    try await gateway.eventually("new A records lead to b") { try await instance("/name") == "b" }
                    try await gateway.eventually("new SRV records lead to b") { try await instance("/service") == "b" }
                    for _ in 0..<5 { #expect(try await instance("/name") == "b") }
                    // A name that stops resolving keeps the instances it had.
                    dns.stop()
                    try await gateway.eventually("the failure is logged") {
                        !gateway.logs.entries(message: "upstream discovery failed; its instances stay").isEmpty
                    }
                    #expect(try await instance("/name") == "b")
                }
            }
        }
    }
}

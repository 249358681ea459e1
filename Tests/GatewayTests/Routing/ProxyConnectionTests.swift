import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import Gateway

/// The proxy's connections, seen from an instance that reports them (Python's HTTP server): the per-instance limit,
/// a kept-alive connection the instance closed, and the order of answers on a pipelined client connection.
@Suite struct ProxyConnectionTests {
    /// Answers `<path> <client port> <request number on that connection>`; `GET /peers` (asked directly) lists the
    /// client ports seen, `GET /closed` those whose connection has closed. `/slow` takes 200 ms; `/drop-second` drops the second request of a connection unanswered,
    /// as an instance whose keep-alive time-out has just passed does.
    private static let instance = """
        import http.server, json, sys, threading, time
        peers, closed, lock = set(), set(), threading.Lock()
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            def finish(self):
                super().finish()
                with lock:
                    closed.add(self.client_address[1])
            def answer(self):
                self.served = getattr(self, 'served', 0) + 1
                length = int(self.headers.get('Content-Length', '0'))
                if length:
                    self.rfile.read(length)
                if self.path in ('/peers', '/closed'):
                    body = json.dumps(sorted(peers if self.path == '/peers' else closed)).encode()
                else:
                    with lock:
                        peers.add(self.client_address[1])
                    if self.path.startswith('/drop-second') and self.served == 2:
                        print('dropped', file=sys.stderr, flush=True)
                        self.close_connection = True
                        return
                    if self.path.startswith('/slow'):
                        time.sleep(0.2)
                    body = f'{self.path} {self.client_address[1]} {self.served}'.encode()
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            do_GET = do_POST = answer
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """

    /// Runs `body` against a gateway routing `/svc` to a fresh instance; returns what the instance wrote to its
    /// standard error.
    @discardableResult
    private func withInstance(
        settings: [String: String] = [:], upstream: String = "",
        _ body: (LiveGateway, BackgroundPython) async throws -> Void
    ) async throws -> [String] {
        let instance = try BackgroundPython(script: Self.instance, arguments: [])
        let table = """
            upstreams:
              svc: {instances: [{url: 'http://127.0.0.1:\(instance.port)'}]\(upstream)}
            routes:
              - {name: svc, pathPrefix: /svc, upstream: svc, auth: none, rewritePrefix: /}
            """
        do {
            try await withRoutingGateway(table, settings: settings) { gateway, _ in try await body(gateway, instance) }
        } catch {
            _ = instance.stop()
            throw error
        }
        return instance.stop()
    }

    @Test func anInstanceGetsNoMoreConnectionsThanTheLimitFromEachEventLoop() async throws {
        try await withInstance(settings: ["routing.maxConnectionsPerInstance": "1"]) { gateway, instance in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 { group.addTask { try await gateway.send(.GET, "/svc/slow").status } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: 200, count: 8))
            let peers = try await gateway.client.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(instance.port)/peers"), timeout: .seconds(10))
            let seen =
                try JSONSerialization.jsonObject(
                    with: Data(try await peers.body.collect(upTo: 1 << 16).readableBytesView))
                as? [Int] ?? []
            // Eight requests at once, one connection per event loop: the rest waited for it.
            #expect(!seen.isEmpty && seen.count <= NIOSingletons.groupLoopCountSuggestion, "\(seen)")
        }
    }

    @Test func anUnusedKeptAliveConnectionClosesAfterTheUpstreamsIdleTimeout() async throws {
        try await withInstance(upstream: ", timeouts: {idle: 300ms}") { gateway, instance in
            let first = String(buffer: try await gateway.send(.GET, "/svc/a").body).split(separator: " ")
            #expect(first.count == 3 && first[2] == "1", "\(first)")
            let port = try #require(first.count == 3 ? Int(first[1]) : nil)
            try await poll("the idle connection to close") {
                let closed = try await gateway.client.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:\(instance.port)/closed"), timeout: .seconds(10))
                let ports = try JSONSerialization.jsonObject(
                    with: Data(try await closed.body.collect(upTo: 1 << 16).readableBytesView))
                return (ports as? [Int] ?? []).contains(port)
            }
            // The next request opens a new connection.
            let second = String(buffer: try await gateway.send(.GET, "/svc/b").body).split(separator: " ")
            #expect(second.count == 3 && second[1] != first[1] && second[2] == "1", "\(second)")
        }
    }

    @Test func aKeptAliveConnectionTheInstanceClosedIsRetriedOnlyWithoutABody() async throws {
        let logged = try await withInstance { gateway, instance in
            // Sequential requests share each event loop's idle connection: every second one on a connection is
            // dropped, and retried on a new connection.
            for _ in 0..<6 {
                let answer = try await gateway.send(.GET, "/svc/drop-second")
                #expect(answer.status == 200, "\(String(buffer: answer.body))")
            }
            // A body may have been read: no retry, 502 (at most three tries reach a reused connection: two loops).
            var statuses: [Int] = []
            for _ in 0..<3 where !statuses.contains(502) {
                statuses.append(
                    try await gateway.send(.POST, "/svc/drop-second", body: .bytes(ByteBuffer(string: "payload")))
                        .status)
            }
            #expect(statuses.contains(502), "\(statuses)")
        }
        #expect(logged.filter { $0 == "dropped" }.count >= 3, "\(logged)")
    }

    @Test func pipelinedRequestsAreAnsweredInOrderWhoeverServesThem() async throws {
        try await withInstance { gateway, _ in
            let requests = ["/healthz", "/svc/slow?n=1", "/healthz", "/svc/n=2", "/svc/slow?n=3", "/openapi.yaml"]
            let script = """
                import socket, sys
                paths = sys.argv[2:]
                with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20) as connection:
                    connection.sendall(b''.join(f'GET {p} HTTP/1.1\\r\\nHost: gateway\\r\\n\\r\\n'.encode() for p in paths))
                    reader = connection.makefile('rb')
                    for _ in paths:
                        status = reader.readline().split()[1].decode()
                        length = 0
                        while (line := reader.readline()) not in (b'\\r\\n', b''):
                            name, _, value = line.decode().partition(':')
                            if name.lower() == 'content-length':
                                length = int(value)
                        body = reader.read(length)
                        print(status, body[:60].decode(errors='replace').split('\\n')[0])
                """
            let port = gateway.port
            let output = try await offThePool { try python(script, arguments: [String(port)] + requests) }
            let lines = String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
            #expect(lines.count == requests.count, "\(lines)")
            for (line, path) in zip(lines, requests) {
                #expect(line.hasPrefix("200 "), "\(line)")
                if path.hasPrefix("/svc") {
                    #expect(line.contains(" /" + path.dropFirst(5)), "\(path) → \(line)")
                } else {
                    #expect(!line.contains(" /slow") && !line.contains(" /n="), "\(path) → \(line)")
                }
            }
        }
    }

    /// Raw HTTP/1.1 on one connection (Python's socket), for what clients rarely do: wait for `100 Continue`, close
    /// their sending side after a request, send a body whose chunked framing breaks.
    private static let rawClient = """
        import json, socket, sys
        port, case = int(sys.argv[1]), sys.argv[2]
        connection = socket.create_connection(('127.0.0.1', port), timeout=10)
        reader = connection.makefile('rb')
        def answer():
            status = reader.readline().split()[1].decode()
            headers = {}
            while (line := reader.readline()) not in (b'\\r\\n', b''):
                name, _, value = line.decode().partition(':')
                headers[name.strip().lower()] = value.strip()
            body = reader.read(int(headers.get('content-length', '0')))
            return {'status': int(status), 'headers': headers, 'body': body.decode(errors='replace')}
        if case == 'expect':
            connection.sendall(b'POST /svc/up HTTP/1.1\\r\\nHost: g\\r\\nContent-Length: 5\\r\\nExpect: 100-continue\\r\\n\\r\\n')
            interim = answer()
            connection.sendall(b'hello')
            print(json.dumps([interim, answer()]))
        elif case == 'half-close':
            connection.sendall(b'GET /svc/half HTTP/1.1\\r\\nHost: g\\r\\n\\r\\n')
            connection.shutdown(socket.SHUT_WR)
            print(json.dumps([answer()]))
        elif case == 'bad-chunk':
            connection.sendall(b'POST /svc/bad HTTP/1.1\\r\\nHost: g\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\nzz\\r\\n')
            first = answer()
            print(json.dumps([first, reader.read() == b'']))
        """

    @Test func expectContinueHalfCloseAndABrokenBodyAreAnsweredProperly() async throws {
        try await withInstance { gateway, _ in
            func raw(_ name: String) async throws -> [Any] {
                let port = gateway.port
                let output = try await offThePool { try python(Self.rawClient, arguments: [String(port), name]) }
                return try JSONSerialization.jsonObject(with: Data(output)) as? [Any] ?? []
            }
            let expect = try await raw("expect")
            #expect((expect.first as? [String: Any])?["status"] as? Int == 100, "\(expect)")
            #expect((expect.last as? [String: Any])?["status"] as? Int == 200, "\(expect)")
            #expect(((expect.last as? [String: Any])?["body"] as? String)?.hasPrefix("/up ") == true)
            let halfClosed = try await raw("half-close")
            #expect((halfClosed.first as? [String: Any])?["status"] as? Int == 200, "\(halfClosed)")
            let broken = try await raw("bad-chunk")
            let problem = broken.first as? [String: Any]
            #expect(problem?["status"] as? Int == 400, "\(broken)")
            #expect((problem?["body"] as? String)?.contains("malformed-request") == true)
            #expect(broken.last as? Bool == true, "the connection closes after the answer")
        }
    }
}

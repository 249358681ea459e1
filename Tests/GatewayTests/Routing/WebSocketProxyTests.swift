import Foundation
import TestSupport
import Testing

@testable import Gateway

/// WebSocket pass-through with real ends on both sides: Python's `websockets` as the instance (an echo server that
/// reports the handshake it saw and the close codes it received) and as the client.
@Suite struct WebSocketProxyTests {
    private static let server = """
        import asyncio, json, sys
        from websockets.asyncio.server import serve
        from websockets.exceptions import ConnectionClosed
        async def handler(ws):
            headers = ws.request.headers
            await ws.send(json.dumps({'path': ws.request.path, 'tenant': headers.get('X-Kubin-Tenant'),
                                      'forwardedFor': headers.get('X-Forwarded-For')}))
            try:
                async for message in ws:
                    if message == 'close-me':
                        await ws.close(4001, 'the server closes')
                    else:
                        await ws.send(message)
            except ConnectionClosed:
                pass
            print(f'closed {ws.close_code}', file=sys.stderr, flush=True)
        async def main():
            async with serve(handler, '127.0.0.1', 0) as server:
                print(server.sockets[0].getsockname()[1], flush=True)
                await asyncio.Future()
        asyncio.run(main())
        """

    /// Connects to `url` (with `token`, when given), and reports as JSON what happened: the greeting, the echoes of
    /// a text and a 256 KiB binary message, then how the connection ended after `ending` (`client-close`: the client
    /// closes with 4000; `server-close`: it asks the server to close; `idle`: it waits).
    private static let client = """
        import asyncio, json, os, ssl, sys
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        async def main(url, token, ending, ca):
            headers = {'Authorization': f'Bearer {token}'} if token else {}
            secure = {'ssl': ssl.create_default_context(cafile=ca)} if ca else {}
            report = {}
            try:
                async with connect(url, additional_headers=headers, max_size=None, open_timeout=10, **secure) as ws:
                    report['greeting'] = json.loads(await ws.recv())
                    await ws.send('hello')
                    report['text'] = await ws.recv()
                    blob = os.urandom(256 << 10)
                    await ws.send(blob)
                    report['binary'] = (await ws.recv()) == blob
                    if ending == 'client-close':
                        await ws.close(4000, 'the client closes')
                    elif ending == 'server-close':
                        await ws.send('close-me')
                    try:
                        await asyncio.wait_for(ws.recv(), timeout=10)
                    except ConnectionClosed as closed:
                        report['closedBy'] = closed.rcvd.code if closed.rcvd else None
            except InvalidStatus as refused:
                report['status'] = refused.response.status_code
            print(json.dumps(report))
        asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]))
        """

    /// `ca`: the authority a `wss://` URL's certificate is checked against.
    private func run(
        _ url: String, token: String = "", ending: String = "client-close", ca: String = ""
    ) async throws -> [String: Any] {
        let output = try await offThePool { try python(Self.client, arguments: [url, token, ending, ca]) }
        return try JSONSerialization.jsonObject(with: Data(output)) as? [String: Any] ?? [:]
    }

    @Test func framesPassBothWaysAndClosesPropagate() async throws {
        let instance = try BackgroundPython(script: Self.server, arguments: [])
        let table = """
            upstreams:
              chat: {instances: [{url: 'http://127.0.0.1:\(instance.port)'}]}
            routes:
              - {name: chat, pathPrefix: /chat, upstream: chat, websocket: true, rewritePrefix: /v1}
              - {name: plain, pathPrefix: /plain, upstream: chat}
            """
        try await withRoutingGateway(table, settings: ["http.idleTimeout": "1s"]) { gateway, _ in
            let base = "ws://127.0.0.1:\(gateway.port)"
            let echoed = try await run(base + "/chat/room?x=1", token: gateway.token)
            let greeting = echoed["greeting"] as? [String: Any]
            #expect(greeting?["path"] as? String == "/v1/room?x=1")
            #expect(greeting?["tenant"] as? String == "default")
            #expect(greeting?["forwardedFor"] as? String == "127.0.0.1")
            #expect(echoed["text"] as? String == "hello")
            #expect(echoed["binary"] as? Bool == true)
            // The server's close frame reaches the client with its code.
            let serverClosed = try await run(base + "/chat", token: gateway.token, ending: "server-close")
            #expect(serverClosed["closedBy"] as? Int == 4001, "\(serverClosed)")
            // Nothing either way for the idle time-out: the tunnel closes (no close frame: 1006 to the client).
            let idle = try await run(base + "/chat", token: gateway.token, ending: "idle")
            #expect(idle["text"] as? String == "hello")
            #expect(idle["closedBy"] == nil || idle["closedBy"] is NSNull, "\(idle)")
            // Authentication happens before the handshake goes anywhere; a route without `websocket` refuses it.
            #expect(try await run(base + "/chat")["status"] as? Int == 401)
            #expect(try await run(base + "/plain", token: gateway.token)["status"] as? Int == 501)
            #expect(try await gateway.send(.GET, "/healthz").status == 200)
        }
        let closes = instance.stop().filter { $0.hasPrefix("closed ") }
        // The client's own close (4000) reached the server.
        #expect(closes.contains("closed 4000"), "\(closes)")
    }

    /// Behind the gateway's TLS the tunnel relays the plain bytes (it sits after TLS, before HTTP).
    @Test func framesPassOverTLSToo() async throws {
        let instance = try BackgroundPython(script: Self.server, arguments: [])
        defer { _ = instance.stop() }
        let certificates = try TLSTests.Certificates()
        defer { try? FileManager.default.removeItem(atPath: certificates.directory) }
        let table = """
            upstreams:
              chat: {instances: [{url: 'http://127.0.0.1:\(instance.port)'}]}
            routes:
              - {name: chat, pathPrefix: /chat, upstream: chat, websocket: true}
            """
        try await withRoutingGateway(table, settings: certificates.settings) { gateway, _ in
            let echoed = try await run(
                "wss://localhost:\(gateway.port)/chat", token: gateway.token, ca: certificates.path("ca.pem"))
            #expect((echoed["greeting"] as? [String: Any])?["path"] as? String == "/chat", "\(echoed)")
            #expect(echoed["text"] as? String == "hello")
            #expect(echoed["binary"] as? Bool == true)
        }
    }
}

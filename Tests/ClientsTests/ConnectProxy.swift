import Foundation
import TestSupport

/// An HTTP `CONNECT` proxy (a Python process) that tunnels every connection to one loopback port, whatever host was
/// asked for, and reports the hosts asked for: it lets a test use host names that cannot resolve here (an S3 bucket's
/// virtual-hosted name) against a local server.
final class ConnectProxy: Sendable {
    private let program: BackgroundPython

    private static let script = """
        import socket, sys, threading
        target = ('127.0.0.1', int(sys.argv[1]))
        server = socket.socket()
        server.bind(('127.0.0.1', 0))
        server.listen(64)
        print(server.getsockname()[1], flush=True)
        def pipe(source, sink):
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                try: sink.shutdown(socket.SHUT_WR)
                except OSError: pass
        def handle(client):
            head = b''
            while b'\\r\\n\\r\\n' not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return client.close()
                head += chunk
            line = head.split(b'\\r\\n', 1)[0].decode()
            if not line.startswith('CONNECT '):
                return client.close()
            print(line.split()[1], file=sys.stderr, flush=True)
            upstream = socket.create_connection(target)
            client.sendall(b'HTTP/1.1 200 Connection established\\r\\n\\r\\n')
            rest = head.split(b'\\r\\n\\r\\n', 1)[1]
            if rest:
                upstream.sendall(rest)
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
            pipe(client, upstream)
        while True:
            connection, _ = server.accept()
            threading.Thread(target=handle, args=(connection,), daemon=True).start()
        """

    /// Starts a proxy to `127.0.0.1:targetPort`.
    init(to targetPort: Int) throws {
        program = try BackgroundPython(script: Self.script, arguments: [String(targetPort)])
    }

    /// The proxy's port on 127.0.0.1.
    var port: Int { program.port }

    /// Stops the proxy and returns the `host:port` of every tunnel it was asked for.
    func stop() -> [String] { program.stop() }
}

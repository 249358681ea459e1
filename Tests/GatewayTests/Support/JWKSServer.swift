import Foundation
import TestSupport

/// An HTTPS server (a Python process) that serves the JWKS file at `path` on `/jwks.json`, read anew for every
/// request, with a self-signed certificate for 127.0.0.1 written to ``certificatePath``. It counts the requests.
final class JWKSServer: Sendable {
    private let program: BackgroundPython
    /// The PEM of the server's certificate: the only authority a client needs to trust.
    let certificatePath: String

    var url: String { "https://127.0.0.1:\(port)/jwks.json" }

    private static let script = """
        import datetime, http.server, ipaddress, ssl, sys
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        jwks, cert_path, key_path = sys.argv[1:4]
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, '127.0.0.1')])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
        open(cert_path, 'wb').write(cert.public_bytes(serialization.Encoding.PEM))
        open(key_path, 'wb').write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                sys.stderr.write(self.path + '\\n'); sys.stderr.flush()
                body = open(jwks, 'rb').read()
                self.send_response(200); self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
            def log_message(self, *args): pass
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """

    /// Starts a server of the JWKS at `path`.
    init(serving path: String) throws {
        let base = NSTemporaryDirectory() + "jwks-server-" + UUID().uuidString
        certificatePath = base + ".crt"
        program = try BackgroundPython(script: Self.script, arguments: [path, certificatePath, base + ".key"])
    }

    /// The server's port on 127.0.0.1.
    var port: Int { program.port }

    /// Stops the server and returns how many requests it answered.
    func stop() -> Int { program.stop().filter { $0.hasPrefix("/") }.count }
}

import Foundation
import KubinModel
import NIOCore
import TestSupport
import Testing

@testable import Gateway

#if canImport(Glibc)
    import Glibc
#endif

/// TLS termination: TLS 1.2 or newer, HSTS, certificates renewed without dropping connections, and internal callers
/// authenticated by client certificates. The client is Python's ssl (a stack independent of the gateway's).
@Suite struct TLSTests {
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    /// Certificates made for one test, in a directory of their own.
    struct Certificates {
        let directory: String
        func path(_ name: String) -> String { directory + "/" + name }

        init() throws {
            directory = NSTemporaryDirectory() + "kubin-tls-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            _ = try python(
                "import runpy, sys; sys.argv = ['make_certificates.py', '\(directory)']; "
                    + "runpy.run_path('\(TLSTests.scripts.appendingPathComponent("make_certificates.py").path)', "
                    + "run_name='__main__')")
            // The gateway serves copies, which the renewal test overwrites.
            try FileManager.default.copyItem(atPath: path("server.pem"), toPath: path("live.pem"))
            try FileManager.default.copyItem(atPath: path("server.key"), toPath: path("live.key"))
        }

        func serial(_ name: String) throws -> String {
            String(
                decoding: try python(
                    "from cryptography import x509; print(format(x509.load_pem_x509_certificate(open('\(path(name))', "
                        + "'rb').read()).serial_number, 'x'))"), as: UTF8.self
            ).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// The settings of a gateway serving `live.pem`, checking it for renewals every second.
        var settings: [String: String] {
            [
                "tls.certificateFile": path("live.pem"), "tls.privateKeyFile": path("live.key"),
                "tls.reloadInterval": "1s",
            ]
        }
    }

    /// Runs tls_client.py: one connection, `requests` on it; the JSON lines it printed.
    static func client(
        port: Int, _ certificates: Certificates, version: String = "any", certificate: String? = nil,
        requests: [(String, String, [String: String])], body: String? = nil
    ) async throws -> [[String: Any]] {
        let requests = String(
            decoding: try JSONSerialization.data(
                withJSONObject: requests.map { [$0.0, $0.1, $0.2] + (body.map { [$0] } ?? []) as [Any] }),
            as: UTF8.self)
        let lines = try await offThePool {
            try run(port: port, certificates, version: version, certificate: certificate, requests: requests)
        }
        return lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    private static func run(
        port: Int, _ certificates: Certificates, version: String, certificate: String?, requests: String
    ) throws -> [String] {
        let process = try ChildProcess(
            [
                "python3", scripts.appendingPathComponent("tls_client.py").path, String(port),
                certificates.path("ca.pem"), version, certificate.map { certificates.path($0 + ".pem") } ?? "-",
                certificate.map { certificates.path($0 + ".key") } ?? "-", "0", requests,
            ], output: .pipe)
        let data = process.standardOutput?.readDataToEndOfFile() ?? Data()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test func httpsIsServedWithTLS12OrNewerAndHSTS() async throws {
        let certificates = try Certificates()
        try await withLiveGateway(certificates.settings) { live in
            let bearer = ["Authorization": "Bearer \(live.token)"]
            let answers = try await Self.client(
                port: live.port, certificates,
                requests: [("GET", "/healthz", [:]), ("GET", "/api/v1/snapshots", bearer)])
            #expect(answers.first?["version"] as? String == "TLSv1.3", "\(answers)")
            #expect(answers.dropFirst().map { $0["status"] as? Int } == [200, 200], "\(answers)")
            #expect((answers.last?["hsts"] as? String)?.hasPrefix("max-age=") == true)
            let twelve = try await Self.client(
                port: live.port, certificates, version: "1.2", requests: [("GET", "/healthz", [:])])
            #expect(twelve.first?["version"] as? String == "TLSv1.2" && twelve.last?["status"] as? Int == 200)
            let eleven = try await Self.client(
                port: live.port, certificates, version: "1.1", requests: [("GET", "/healthz", [:])])
            #expect(eleven.count == 1 && eleven.first?["error"] != nil, "TLS 1.1 is refused: \(eleven)")
            // Plain HTTP on the TLS port gets no answer.
            #expect((try? await live.send(.GET, "/healthz")) == nil)
        }
    }

    @Test func aRenewedCertificateServesNewConnectionsWhileOpenOnesGoOn() async throws {
        let certificates = try Certificates()
        let original = try certificates.serial("server.pem")
        let renewed = try certificates.serial("renewed.pem")
        try await withLiveGateway(certificates.settings) { live in
            // A client that holds its connection open between two requests, waiting for a line on stdin.
            let process = try ChildProcess(
                [
                    "python3", Self.scripts.appendingPathComponent("tls_client.py").path, String(live.port),
                    certificates.path("ca.pem"), "any", "-", "-", "1",
                    #"[["GET", "/healthz", {}], ["GET", "/healthz", {}]]"#,
                ], input: .pipe, output: .pipe)
            let reader = process.standardOutput!
            /// The next JSON line the client prints, read off the concurrency pool.
            @Sendable func line() async throws -> [String: Any] {
                let bytes = try await offThePool {
                    var bytes = Data()
                    while let byte = try? reader.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
                        bytes.append(byte)
                    }
                    return bytes
                }
                return (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any] ?? [:]
            }
            let first = try await line()
            #expect(first["serial"] as? String == original)
            let answered = try await line()
            #expect(answered["status"] as? Int == 200)

            // Renewal: the files are replaced (key first, as a careless renewal might, then the certificate).
            try FileManager.default.removeItem(atPath: certificates.path("live.key"))
            try FileManager.default.copyItem(
                atPath: certificates.path("renewed.key"), toPath: certificates.path("live.key"))
            try FileManager.default.removeItem(atPath: certificates.path("live.pem"))
            try FileManager.default.copyItem(
                atPath: certificates.path("renewed.pem"), toPath: certificates.path("live.pem"))
            try await live.eventually("new connections get the renewed certificate", timeout: .seconds(20)) {
                try await Self.client(port: live.port, certificates, requests: []).first?["serial"] as? String
                    == renewed
            }
            #expect(live.logs.entries(message: "TLS certificate reloaded").count == 1)

            // The connection opened before the renewal is still served.
            process.standardInput?.write(Data("go\n".utf8))
            let second = try await line()
            #expect(second["status"] as? Int == 200)
            let status = try await offThePool { process.waitUntilExit() }
            #expect(status == 0)

            // A broken pair (a key that is not the certificate's) is refused; the renewed pair stays.
            try FileManager.default.removeItem(atPath: certificates.path("live.key"))
            try FileManager.default.copyItem(
                atPath: certificates.path("server.key"), toPath: certificates.path("live.key"))
            try await live.eventually("the broken pair noticed", timeout: .seconds(20)) {
                !live.logs.entries(message: "the TLS certificate or key is unusable; the previous pair stays").isEmpty
            }
            let after = try await Self.client(port: live.port, certificates, requests: [("GET", "/healthz", [:])])
            #expect(after.first?["serial"] as? String == renewed && after.last?["status"] as? Int == 200)
        }
    }

    @Test func clientCertificatesAuthenticateInternalCallers() async throws {
        let certificates = try Certificates()
        try await withLiveGateway(
            certificates.settings.merging([
                "tls.clientCAFile": certificates.path("ca.pem"), "tls.clientScopes": "snapshots:read",
            ]) { $1 }
        ) { live in
            // acme's snapshot, uploaded with a token of tenant acme.
            let signer = try #require(live.gateway.access.developmentSigner)
            let acme = try await signer.token(
                subject: "uploader", tenant: TenantID(validating: "acme")!, scopes: Set(Scope.allCases),
                validity: .seconds(600))
            let upload = try await Self.client(
                port: live.port, certificates,
                requests: [("POST", "/api/v1/snapshots?cluster=c", ["Authorization": "Bearer \(acme)"])],
                body: #"{"kind":"List","items":[]}"#)
            #expect(upload.last?["status"] as? Int == 202)
            let id = try #require(
                (try JSONSerialization.jsonObject(with: Data((upload.last?["body"] as? String ?? "").utf8))
                    as? [String: Any])?["id"] as? String)

            // The certificate's caller is tenant acme (O) with the configured scope: it reads, it may not write.
            let list = try await Self.client(
                port: live.port, certificates, certificate: "client",
                requests: [("GET", "/api/v1/snapshots", [:]), ("POST", "/api/v1/snapshots?cluster=c", [:])])
            #expect(list.dropFirst().map { $0["status"] as? Int } == [200, 403], "\(list)")
            #expect((list.dropFirst().first?["body"] as? String)?.contains(id) == true, "acme's snapshot is listed")
            let none = try await Self.client(
                port: live.port, certificates, requests: [("GET", "/api/v1/snapshots", [:])])
            #expect(none.last?["status"] as? Int == 401)
            let nameless = try await Self.client(
                port: live.port, certificates, certificate: "nameless", requests: [("GET", "/api/v1/snapshots", [:])])
            #expect(nameless.last?["status"] as? Int == 401)
            #expect((nameless.last?["body"] as? String)?.contains("invalid-client-certificate") == true)
            let foreign = try await Self.client(
                port: live.port, certificates, certificate: "foreign", requests: [("GET", "/api/v1/snapshots", [:])])
            #expect(foreign.last?["error"] != nil, "a certificate of another authority fails the handshake: \(foreign)")
            // A token still works beside certificates, and wins over one.
            let both = try await Self.client(
                port: live.port, certificates, certificate: "client",
                requests: [("GET", "/api/v1/snapshots", ["Authorization": "Bearer \(live.token)"])])
            #expect(both.last?["status"] as? Int == 200)
            let audit = live.logs.entries(message: "authentication failed").compactMap { $0["credential"] as? String }
            #expect(audit.contains("client-certificate"))
        }
    }
}

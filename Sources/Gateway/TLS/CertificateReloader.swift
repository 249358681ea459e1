import Foundation
import KubinModel
import KubinSupport
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The listener's certificate chain and key, re-read from their files when they change.
///
/// Every TLS handshake asks ``override`` for the current pair (NIOSSL's `sslContextCallback`), so a renewed
/// certificate (cert-manager rewriting a Secret, say) serves new connections within `interval` while the open ones
/// keep theirs: nothing is dropped. A pair that cannot be read, or whose key does not match its certificate, is
/// logged and the previous one stays.
final class CertificateReloader: Sendable {
    /// The certificate chain (PEM) and private key (PEM) files.
    let certificatePath: String
    let privateKeyPath: String
    private let interval: Duration
    private let logger: Logger

    private struct Loaded: Sendable {
        var override: NIOSSLContextConfigurationOverride
        var certificateBytes: [UInt8]
        var keyBytes: [UInt8]
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
    }

    private let current: Mutex<Loaded>

    /// Reads the pair now; throws when it is unusable (a bad start stops the gateway).
    init(certificatePath: String, privateKeyPath: String, interval: Duration, logger: Logger) throws {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.interval = interval
        self.logger = logger
        current = Mutex(try Self.load(certificatePath: certificatePath, privateKeyPath: privateKeyPath))
    }

    /// What each handshake uses.
    var override: NIOSSLContextConfigurationOverride { current.withLock { $0.override } }

    /// The certificate chain and key in use.
    var pair: (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey) {
        current.withLock { ($0.chain, $0.key) }
    }

    /// Checks the files every `interval`.
    var reloader: PeriodicService { PeriodicService(interval: interval) { _ = self.reloadIfChanged() } }

    /// Re-reads the files; swaps the pair in when they changed and are good. True when it swapped.
    @discardableResult
    func reloadIfChanged() -> Bool {
        guard let certificate = try? Array(Data(contentsOf: URL(fileURLWithPath: certificatePath))),
            let key = try? Array(Data(contentsOf: URL(fileURLWithPath: privateKeyPath)))
        else {
            logger.warning("cannot read the TLS certificate or key; the previous pair stays")
            return false
        }
        let unchanged = current.withLock { $0.certificateBytes == certificate && $0.keyBytes == key }
        if unchanged { return false }
        do {
            let loaded = try Self.loaded(certificateBytes: certificate, keyBytes: key)
            current.withLock { $0 = loaded }
            logger.notice(
                "TLS certificate reloaded",
                metadata: ["serial": "\(loaded.chain.first?.serialNumber.hexString ?? "")"])
            return true
        } catch {
            // A renewal usually writes the two files one after the other: the next poll sees the pair.
            logger.warning(
                "the TLS certificate or key is unusable; the previous pair stays", metadata: ["error": "\(error)"])
            return false
        }
    }

    private static func load(certificatePath: String, privateKeyPath: String) throws -> Loaded {
        try loaded(
            certificateBytes: Array(Data(contentsOf: URL(fileURLWithPath: certificatePath))),
            keyBytes: Array(Data(contentsOf: URL(fileURLWithPath: privateKeyPath))))
    }

    private static func loaded(certificateBytes: [UInt8], keyBytes: [UInt8]) throws -> Loaded {
        let chain = try NIOSSLCertificate.fromPEMBytes(certificateBytes)
        guard !chain.isEmpty else { throw TLSFilesError(message: "the certificate file holds no certificate") }
        let key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        // A context of the pair checks that the key is the certificate's.
        _ = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)))
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(key)
        return Loaded(
            override: override, certificateBytes: certificateBytes, keyBytes: keyBytes, chain: chain, key: key)
    }
}

/// The TLS files could not be used.
struct TLSFilesError: Error, CustomStringConvertible {
    var message: String
    var description: String { "TLS: \(message)" }
}

import KubinModel
import NIOCore
import NIOSSL
import X509

/// Internal callers authenticated by a client certificate instead of a token: the certificate was verified in the
/// handshake against `tls.clientCAFile`; its subject's Organization (O) names the tenant and its Common Name (CN)
/// the caller; the scopes are `tls.clientScopes`.
struct ClientCertificates: Sendable {
    /// What every certificate-authenticated caller may do.
    let scopes: Set<Scope>

    /// The principal of the certificate verified on `channel`, nil when the client presented none; throws when it
    /// presented one that names no valid tenant.
    func principal(on channel: any Channel) async throws(AuthFailure) -> Principal? {
        guard let presented = try? await channel.nioSSL_peerCertificate().get() else { return nil }
        guard let der = try? presented.toDERBytes(), let certificate = try? Certificate(derEncoded: der) else {
            throw .badClientCertificate
        }
        var organization: String?
        var commonName: String?
        for rdn in certificate.subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.organizationName { organization = String(attribute.value) }
                if attribute.type == .RDNAttributeType.commonName { commonName = String(attribute.value) }
            }
        }
        guard let organization, let tenant = TenantID(validating: organization) else { throw .badClientCertificate }
        return Principal(
            subject: "cert:\(String((commonName ?? "unnamed").prefix(256)))", tenant: tenant, scopes: scopes,
            method: .clientCertificate)
    }
}

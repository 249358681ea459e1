"""Makes the TLS test certificates with Python's `cryptography`: usage: make_certificates.py DIRECTORY.

ca.pem / ca.key          a certificate authority
server.pem / server.key  a server certificate for 127.0.0.1 and localhost, signed by the CA
renewed.pem / renewed.key  another server certificate (new key, new serial) signed by the CA
client.pem / client.key  a client certificate, O=acme, CN=indexer, signed by the CA
nameless.pem / .key      a client certificate with no O, signed by the CA
foreign-ca.pem, foreign.pem / foreign.key  a client certificate (O=acme) of another authority
"""
import datetime, ipaddress, os, sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

directory = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)


def write(name, key, cert):
    with open(os.path.join(directory, name + ".pem"), "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(directory, name + ".key"), "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))


def authority(common_name):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def leaf(ca_key, ca_cert, attributes, server):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(x509.Name(attributes)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


ca_key, ca_cert = authority("kubin test CA")
write("ca", ca_key, ca_cert)
cn = lambda value: x509.NameAttribute(NameOID.COMMON_NAME, value)
org = lambda value: x509.NameAttribute(NameOID.ORGANIZATION_NAME, value)
write("server", *leaf(ca_key, ca_cert, [cn("127.0.0.1")], server=True))
write("renewed", *leaf(ca_key, ca_cert, [cn("127.0.0.1")], server=True))
write("client", *leaf(ca_key, ca_cert, [org("acme"), cn("indexer")], server=False))
write("nameless", *leaf(ca_key, ca_cert, [cn("no-organization")], server=False))
foreign_key, foreign_cert = authority("another CA")
write("foreign-ca", foreign_key, foreign_cert)
write("foreign", *leaf(foreign_key, foreign_cert, [org("acme"), cn("intruder")], server=False))

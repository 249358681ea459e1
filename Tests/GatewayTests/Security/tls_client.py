"""A TLS client for the TLS tests, independent of the gateway's stack (Python's ssl and http.client).

Usage: tls_client.py PORT CA_FILE VERSION CERT KEY PAUSE REQUESTS
VERSION is 1.1, 1.2, 1.3 or any; CERT and KEY are a client certificate or '-'; PAUSE (0 or 1) waits for a line on
standard input between requests. REQUESTS is JSON [[method, path, {headers}, body?], ...], sent on ONE connection.
Prints one JSON line per event: {"serial": hex} after the handshake, {"status": n, "body": text} per answer, or
{"error": text} if the connection fails.
"""
import http.client, json, ssl, sys

port, ca, version, cert, key, pause, requests = sys.argv[1:8]
context = ssl.create_default_context(cafile=ca)
versions = {"1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
if version in versions:
    if version == "1.1":
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
    else:
        context.minimum_version = versions[version]
    context.maximum_version = versions[version]
if cert != "-":
    context.load_cert_chain(cert, key)


def emit(value):
    print(json.dumps(value), flush=True)


try:
    connection = http.client.HTTPSConnection("127.0.0.1", int(port), context=context, timeout=20)
    connection.connect()
    der = connection.sock.getpeercert(binary_form=True)
    from cryptography import x509
    emit({"serial": format(x509.load_der_x509_certificate(der).serial_number, "x"),
          "version": connection.sock.version()})
    for index, (method, path, headers, *body) in enumerate(json.loads(requests)):
        if index > 0 and pause == "1":
            sys.stdin.readline()
        connection.request(method, path, body=body[0].encode() if body else None, headers=headers)
        response = connection.getresponse()
        emit({"status": response.status, "body": response.read().decode(errors="replace"),
              "hsts": response.getheader("Strict-Transport-Security")})
except Exception as error:  # noqa: BLE001 - the test reads what failed
    emit({"error": f"{type(error).__name__}: {error}"})

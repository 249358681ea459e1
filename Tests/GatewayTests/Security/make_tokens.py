"""Makes the token corpus of the authentication tests with Python's `cryptography`, independently of jwt-kit.

Usage: make_tokens.py JWKS_PATH HS256_SECRET ISSUER AUDIENCE
Writes the public keys to JWKS_PATH (RSA x2 for RS256, one RSA marked PS256, EC P-256, Ed25519) and prints a JSON
object of named tokens: good ones of every algorithm and the refusals the tests expect.
"""
import base64, hashlib, hmac, json, sys, time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

jwks_path, secret, issuer, audience = sys.argv[1:5]
now = int(time.time())


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def number(value, length=None):
    length = length or (value.bit_length() + 7) // 8
    return b64(value.to_bytes(length, "big"))


def encode(obj):
    return b64(json.dumps(obj, separators=(",", ":")).encode())


rsa_a = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_b = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_ps = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
ed_key = ed25519.Ed25519PrivateKey.generate()


def rsa_jwk(key, kid, alg=None):
    public = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": kid, "use": "sig", "n": number(public.n), "e": number(public.e)}
    if alg:
        jwk["alg"] = alg
    return jwk


ec_public = ec_key.public_key().public_numbers()
ed_public = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
jwks = {
    "keys": [
        rsa_jwk(rsa_a, "rsa-a", "RS256"),
        rsa_jwk(rsa_b, "rsa-b"),
        rsa_jwk(rsa_ps, "rsa-ps", "PS256"),
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": number(ec_public.x, 32), "y": number(ec_public.y, 32)},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(ed_public)},
        # Not for signatures: must be skipped, not fatal.
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": number(rsa_b.public_key().public_numbers().n), "e": "AQAB"},
    ]
}
with open(jwks_path, "w") as out:
    json.dump(jwks, out)


def sign(alg, signing_input):
    data = signing_input.encode()
    if alg == "RS256":
        return lambda key: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        return lambda key: key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    if alg == "ES256":
        def es(key):
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return es
    if alg == "EdDSA":
        return lambda key: key.sign(data)
    if alg.startswith("HS"):
        return lambda key: hmac.new(key, data, hashlib.sha256).digest()
    raise ValueError(alg)


def claims(**changes):
    base = {
        "iss": issuer, "aud": audience, "sub": "user-1", "tenant": "acme",
        "scope": "snapshots:read snapshots:write", "iat": now, "nbf": now - 5, "exp": now + 600,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def high_s(token_text):
    """The same ES256 token with its signature's other form: s replaced by n - s (valid, and high-S if s was low)."""
    head_part, body_part, signature_part = token_text.split(".")
    raw = base64.urlsafe_b64decode(signature_part + "=" * (-len(signature_part) % 4))
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    if s > P256_ORDER // 2:  # already high: keep it
        return token_text
    return head_part + "." + body_part + "." + b64(r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big"))


def token(alg, key, kid=None, payload=None, header_extra=None):
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    header.update(header_extra or {})
    signing_input = encode(header) + "." + encode(payload if payload is not None else claims())
    return signing_input + "." + b64(sign(alg, signing_input)(key))


key_bytes = secret.encode()
good_rs = token("RS256", rsa_a, "rsa-a")
head, body, signature = good_rs.split(".")
rsa_public_pem = rsa_a.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

tokens = {
    "rs256": good_rs,
    "rs256-second-key": token("RS256", rsa_b, "rsa-b"),
    "ps256": token("PS256", rsa_ps, "rsa-ps"),
    "es256": token("ES256", ec_key, "ec"),
    "eddsa": token("EdDSA", ed_key, "ed"),
    "hs256": token("HS256", key_bytes),
    "audience-in-list": token("ES256", ec_key, "ec", claims(aud=["other", audience])),
    "scp-array": token("ES256", ec_key, "ec", claims(scope=None, scp=["snapshots:read"])),
    "exp-within-leeway": token("ES256", ec_key, "ec", claims(exp=now - 20)),
    "nbf-within-leeway": token("ES256", ec_key, "ec", claims(nbf=now + 20)),
    "read-only": token("ES256", ec_key, "ec", claims(scope="snapshots:read")),
    "write-only": token("ES256", ec_key, "ec", claims(scope="snapshots:write other:scope")),
    "no-scope": token("ES256", ec_key, "ec", claims(scope=None)),
    "other-tenant": token("ES256", ec_key, "ec", claims(tenant="globex")),
    "es256-high-s": high_s(token("ES256", ec_key, "ec", claims(sub="user-high-s"))),
    # Refusals.
    "alg-none": encode({"alg": "none", "typ": "JWT"}) + "." + body + ".",
    "alg-None": encode({"alg": "None"}) + "." + body + ".",
    "alg-NONE-signed": encode({"alg": "NONE", "kid": "rsa-a"}) + "." + body + "." + signature,
    "alg-HS512": token("HS256", key_bytes, header_extra={"alg": "HS512"}),
    "alg-RS512": encode({"alg": "RS512", "kid": "rsa-a"}) + "." + body + "." + signature,
    "alg-missing": encode({"typ": "JWT", "kid": "rsa-a"}) + "." + body + "." + signature,
    "alg-not-string": encode({"alg": 256, "kid": "rsa-a"}) + "." + body + "." + signature,
    "hs256-with-rsa-public-key": token("HS256", rsa_public_pem, "rsa-a"),
    "rs256-naming-ec-key": token("RS256", rsa_a, "ec"),
    "es256-naming-rsa-key": token("ES256", ec_key, "rsa-a"),
    "ps256-naming-rs256-key": token("PS256", rsa_a, "rsa-a"),
    "rs256-naming-ps256-key": token("RS256", rsa_ps, "rsa-ps"),
    "eddsa-naming-ec-key": token("EdDSA", ed_key, "ec"),
    "rs256-without-kid": token("RS256", rsa_a),
    "unknown-kid": token("ES256", ec_key, "no-such-key"),
    "encryption-key-kid": token("RS256", rsa_b, "enc"),
    "kid-not-string": token("ES256", ec_key, header_extra={"kid": 7}),
    "hs256-wrong-secret": token("HS256", b"another-secret-another-secret-xx"),
    "rs256-wrong-key": token("RS256", rsa_b, "rsa-a"),
    "tampered-payload": head + "." + encode(claims(tenant="globex")) + "." + signature,
    "tampered-signature": head + "." + body + "." + ("A" if signature[0] != "A" else "B") + signature[1:],
    "signature-empty": head + "." + body + ".",
    "signature-of-other-token": head + "." + body + "." + token("RS256", rsa_a, "rsa-a", claims(sub="x")).split(".")[2],
    "expired": token("ES256", ec_key, "ec", claims(exp=now - 3600)),
    "expired-just-past-leeway": token("ES256", ec_key, "ec", claims(exp=now - 90)),
    "missing-exp": token("ES256", ec_key, "ec", claims(exp=None)),
    "exp-absurd": token("ES256", ec_key, "ec", claims(exp=1e300)),
    "exp-in-a-year": token("ES256", ec_key, "ec", claims(exp=now + 366 * 86400)),
    "crit-unknown": token("ES256", ec_key, "ec", header_extra={"crit": ["kubin-ext"], "kubin-ext": True}),
    "crit-empty": token("ES256", ec_key, "ec", header_extra={"crit": []}),
    "exp-not-number": token("ES256", ec_key, "ec", claims(exp="tomorrow")),
    "nbf-future": token("ES256", ec_key, "ec", claims(nbf=now + 3600)),
    "nbf-not-number": token("ES256", ec_key, "ec", claims(nbf="now")),
    "iat-future": token("ES256", ec_key, "ec", claims(iat=now + 3600)),
    "wrong-issuer": token("ES256", ec_key, "ec", claims(iss="https://evil.example")),
    "missing-issuer": token("ES256", ec_key, "ec", claims(iss=None)),
    "wrong-audience": token("ES256", ec_key, "ec", claims(aud="someone-else")),
    "audience-list-without-ours": token("ES256", ec_key, "ec", claims(aud=["a", "b"])),
    "missing-audience": token("ES256", ec_key, "ec", claims(aud=None)),
    "missing-tenant": token("ES256", ec_key, "ec", claims(tenant=None)),
    "tenant-not-string": token("ES256", ec_key, "ec", claims(tenant=42)),
    "tenant-with-slash": token("ES256", ec_key, "ec", claims(tenant="acme/../globex")),
    "tenant-empty": token("ES256", ec_key, "ec", claims(tenant="")),
    "truncated-two-parts": head + "." + body,
    "truncated-mid-signature": good_rs[: len(good_rs) - 10],
    "four-parts": good_rs + ".extra",
    "one-part": "justonepart",
    "empty-parts": "..",
    "header-not-base64url": "eyJ!" + "." + body + "." + signature,
    "payload-not-base64url": head + ".***." + signature,
    "signature-not-base64url": head + "." + body + ".sig+with/slashes==",
    "header-not-json": b64(b"not json") + "." + body + "." + signature,
    "payload-not-json": head + "." + b64(b"[1, 2") + "." + signature,
    "payload-array": head + "." + b64(b"[1,2,3]") + "." + signature,
    "header-impossible-length": "a" + "." + body + "." + signature,
    "oversized": token("ES256", ec_key, "ec", claims(padding="x" * 9000)),
    "unicode": "eyJhbGciOiJSUzI1NiJ9.é.sig",
}
json.dump(tokens, sys.stdout)

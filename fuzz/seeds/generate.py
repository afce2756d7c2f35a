#!/usr/bin/env python3
"""Writes the seed inputs under fuzz/seeds/ (committed; the fuzzer's own corpus in
fuzz/corpus/ is not).

    python3 fuzz/seeds/generate.py      # needs python3 and the openssl CLI

assertion_parse/  compact JWS shapes: valid-looking assertions for the fixture
                  integration (iss, kids, audiences and times match
                  fuzz/src/lib.rs), dangerous headers, bad claims, structural faults.
                  Signatures are random bytes of the right length: the fixture keys
                  are generated per process, so no seed can carry a valid signature.
public_key_text/  public keys as PEM (SPKI and PKCS#1), as JWK and as raw DER, of
                  every supported type, plus refused ones (RSA 1024, P-521, private
                  keys, encrypted PEM, a private JWK).
structured_claims needs no seeds: its input is decoded by `arbitrary`.
"""

import base64
import json
import os
import random
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# Keep in step with fuzz/src/lib.rs.
NOW = 1_800_000_000
ISS = "5e9b0c6a-1a64-4b0a-9a1b-6f3f3c2f0a11"
USER = "8a4c3f1e-2b7d-4c9a-8e5f-0d1c2b3a4f5e"
AUD = "auth.example.test"

rng = random.Random(7523)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(obj) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return b64url(text.encode())


def sig(n: int) -> str:
    return b64url(bytes(rng.getrandbits(8) for _ in range(n)))


def write(directory: str, name: str, data) -> None:
    path = os.path.join(HERE, directory)
    os.makedirs(path, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def assertion_seeds() -> None:
    good = {
        "iss": ISS,
        "sub": USER,
        "aud": AUD,
        "iat": NOW,
        "exp": NOW + 600,
        "jti": "f3c1a2b4-0001",
        "scope": "signature impersonation",
    }
    payloads = {
        "good": good,
        "app": {k: v for k, v in good.items() if k != "sub"},
        "aud-array": {**good, "aud": ["https://other.example", "https://auth.example.test/oauth/token"]},
        "aud-wrong": {**good, "aud": "https://evil.example"},
        "aud-number": {**good, "aud": 5},
        "iss-missing": {k: v for k, v in good.items() if k != "iss"},
        "iss-empty": {**good, "iss": ""},
        "iss-number": {**good, "iss": 42},
        "iss-other": {**good, "iss": "00000000-0000-4000-8000-000000000000"},
        "exp-float": {**good, "exp": NOW + 600.75, "nbf": NOW - 0.5},
        "exp-past": {**good, "exp": NOW - 3600},
        "exp-huge": {**good, "exp": 18446744073709551615, "iat": -9223372036854775808},
        "exp-string": {**good, "exp": str(NOW + 600)},
        "nbf-null": {**good, "nbf": None},
        "iat-future": {**good, "iat": NOW + 7200, "exp": NOW + 7300},
        "jti-long": {**good, "jti": "j" * 257},
        "sub-null": {**good, "sub": None},
        "scope-array": {**good, "scope": ["signature"]},
        "nested": {**good, "x": {"a": [1, 2, {"b": None}]}, "deep": [[[[[[[[[[1]]]]]]]]]]},
    }
    headers = {
        "rs256": ({"alg": "RS256", "typ": "JWT"}, 256),
        "rs256-kid": ({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}, 256),
        "ps512": ({"alg": "PS512", "kid": "rsa-1"}, 256),
        "es256-kid": ({"alg": "ES256", "kid": "ec-1"}, 64),
        "es256": ({"alg": "ES256"}, 64),
        "es256-retired": ({"alg": "ES256", "kid": "ec-retired"}, 64),
        "es384": ({"alg": "ES384"}, 96),
        "eddsa": ({"alg": "EdDSA"}, 64),
        "kid-unknown": ({"alg": "RS256", "kid": "no-such-key"}, 256),
        "kid-mismatch": ({"alg": "RS256", "kid": "ec-1"}, 256),
        "kid-null": ({"alg": "RS256", "kid": None, "typ": None}, 256),
        "kid-number": ({"alg": "RS256", "kid": 1}, 256),
        "none": ({"alg": "none"}, 0),
        "none-case": ({"alg": "nOnE"}, 0),
        "hs256": ({"alg": "HS256"}, 32),
        "hs-lower": ({"alg": "hs512"}, 64),
        "unknown": ({"alg": "XX999"}, 8),
        "crit": ({"alg": "RS256", "crit": ["exp"], "exp": 1}, 256),
        "alg-number": ({"alg": 7}, 8),
        "alg-missing": ({"typ": "JWT"}, 8),
        "jwk-embedded": ({"alg": "RS256", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}, 256),
        "header-array": ("[1]", 8),
    }
    for name, (header, n) in headers.items():
        write("assertion_parse", f"header-{name}", f"{seg(header)}.{seg(good)}.{sig(n)}")
    for name, payload in payloads.items():
        write("assertion_parse", f"claims-{name}", f"{seg(headers['rs256'][0])}.{seg(payload)}.{sig(256)}")
        write("assertion_parse", f"claims-es-{name}", f"{seg(headers['es256-kid'][0])}.{seg(payload)}.{sig(64)}")

    h, p = seg(headers["rs256"][0]), seg(good)
    structural = {
        "empty": "",
        "two-parts": f"{h}.{p}",
        "four-parts": f"{h}.{p}.{sig(8)}.x",
        "jwe": "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d",
        "padded": f"{h}==.{p}=.{sig(256)}==",
        "bad-b64-header": f"!!.{p}.{sig(8)}",
        "bad-b64-sig": f"{h}.{p}.!!",
        "std-alphabet": f"{h}.{p}.+/8=",
        "payload-not-object": f"{h}.{seg('3')}.{sig(8)}",
        "payload-not-json": f"{h}.{b64url(b'{not json')}.{sig(8)}",
        "empty-sig": f"{h}.{p}.",
        "only-dots": "..",
        "whitespace": f" {h}.{p}.{sig(256)}\n",
    }
    for name, token in structural.items():
        write("assertion_parse", f"structure-{name}", token)


def openssl(*args: str, stdin: bytes = b"") -> bytes:
    return subprocess.run(["openssl", *args], input=stdin, check=True, capture_output=True).stdout


def der_read(data: bytes, pos: int = 0):
    """Returns (tag, content, next position) of the DER element at pos."""
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, data[pos : pos + length], pos + length


def der_children(content: bytes):
    pos, out = 0, []
    while pos < len(content):
        tag, body, pos = der_read(content, pos)
        out.append((tag, body))
    return out


def spki_key_bits(spki: bytes) -> bytes:
    _, body, _ = der_read(spki)
    (_, _alg), (_, bits) = der_children(body)[:2]
    return bits[1:]  # drop the unused-bits byte


def pem(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def key_seeds() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        specs = {
            "rsa2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "rsa1024": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
            "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "p384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "p521": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
            "ed25519": ["-algorithm", "ED25519"],
        }
        for name, spec in specs.items():
            private_path = os.path.join(tmp, name)
            openssl("genpkey", *spec, "-out", private_path)
            spki = openssl("pkey", "-in", private_path, "-pubout", "-outform", "DER")
            write("public_key_text", f"{name}-spki.txt", pem("PUBLIC KEY", spki))
            write("public_key_text", f"{name}-spki.der", spki)
            key_bits = spki_key_bits(spki)
            if name.startswith("rsa"):
                write("public_key_text", f"{name}-pkcs1.txt", pem("RSA PUBLIC KEY", key_bits))
                write("public_key_text", f"{name}-pkcs1.der", key_bits)
                _, body, _ = der_read(key_bits)
                (_, n), (_, e) = der_children(body)
                jwk = {"kty": "RSA", "n": b64url(n.lstrip(b"\0")), "e": b64url(e)}
            elif name == "ed25519":
                jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(key_bits)}
            else:
                size = {"p256": 32, "p384": 48, "p521": 66}[name]
                crv = {"p256": "P-256", "p384": "P-384", "p521": "P-521"}[name]
                xy = key_bits[1:]
                jwk = {"kty": "EC", "crv": crv, "x": b64url(xy[:size]), "y": b64url(xy[size:])}
            write("public_key_text", f"{name}-jwk.json", json.dumps({**jwk, "kid": name, "use": "sig"}))
            if name == "p256":
                # A refused label; its body is the public SPKI, so that no private
                # key is ever committed.
                write("public_key_text", "p256-private-label.txt", pem("PRIVATE KEY", spki))
                write("public_key_text", "p256-private-jwk.json", json.dumps({**jwk, "d": b64url(b"\1" * 32)}))
                encrypted = pem("PUBLIC KEY", spki).replace(
                    "-----\n", "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n", 1
                )
                write("public_key_text", "p256-encrypted.txt", encrypted)
                write("public_key_text", "p256-jwk-short-x.json", json.dumps({**jwk, "x": jwk["x"][:20]}))
    write("public_key_text", "garbage.txt", "hello")
    write("public_key_text", "jwk-unknown-kty.json", '{"kty":"oct","k":"AAAA"}')
    write("public_key_text", "pem-no-end.txt", "-----BEGIN PUBLIC KEY-----\nMFkw\n")


if __name__ == "__main__":
    assertion_seeds()
    key_seeds()

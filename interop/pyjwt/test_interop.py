#!/usr/bin/env python3
"""Independent interop check of jwtgrant against PyJWT.

Starts the jwtgrant binary once per access-token algorithm (ES256, RS256,
EdDSA) on a free loopback port with a fresh data directory, registers
integrations through the admin commands with keys made by `cryptography`,
mints RFC 7523 assertions with PyJWT, exchanges them at /oauth/token and
verifies the RFC 9068 access tokens with PyJWT against the server's JWKS.

Only PyJWT, cryptography and the standard library are used.

Usage:
    test_interop.py [--bin PATH] [--alg ES256|RS256|EdDSA ...] [--keep]
The binary comes from --bin, else $JWTGRANT_BIN.

Prints every check, then a closing line 'pyjwt-interop: N passed, N failed',
and exits 1 when any check failed (2 on a usage error).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
USER_SCOPE = "signature impersonation"
APP_SCOPE = "signature"
SERVER_ALGS = ["ES256", "RS256", "EdDSA"]
# What the JWKS key of each server algorithm must look like.
SERVER_KEY_SHAPE = {
    "ES256": {"kty": "EC", "crv": "P-256"},
    "RS256": {"kty": "RSA"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
}
# The loopback server must never be reached through a proxy (PyJWKClient
# uses urllib.request.urlopen, which honours *_proxy unless no_proxy says so).
for _var in ("no_proxy", "NO_PROXY"):
    _old = os.environ.get(_var, "")
    os.environ[_var] = ",".join(x for x in (_old, "127.0.0.1", "localhost") if x)

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ----------------------------------------------------------------- checks


class Checks:
    def __init__(self, verbose=False):
        self.verbose = verbose
        self.passed = 0
        self.failures = []
        self.section = ""
        self.section_passed = 0

    def end_section(self):
        if self.section and not self.verbose:
            print(f"  {self.section_passed} ok", flush=True)
        self.section = ""

    def begin(self, section):
        self.end_section()
        self.section = section
        self.section_passed = 0
        print(f"== {section}", flush=True)

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            self.section_passed += 1
            if self.verbose:
                print(f"  ok   {name}", flush=True)
        else:
            full = f"[{self.section}] {name}"
            if detail:
                full += f"\n         {detail}"
            self.failures.append(full)
            print(f"  FAIL {name}" + (f"\n         {detail}" if detail else ""), flush=True)
        return bool(cond)

    def error(self, name, exc):
        tb = "".join(traceback.format_exception(exc)).rstrip()
        return self.check(name, False, f"{type(exc).__name__}: {exc}\n{tb}")


# ------------------------------------------------------------------- HTTP


class Response:
    def __init__(self, method, url, req_body, status, headers, body):
        self.method, self.url, self.req_body = method, url, req_body
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe(self):
        req = f"{self.method} {self.url}"
        if self.req_body:
            req += f" body={self.req_body!r}"
        text = self.body.decode("utf-8", "replace")
        if len(text) > 600:
            text = text[:600] + "..."
        return f"request: {req}\n         response: HTTP {self.status} {text}"


def http(method, url, data=None, headers=None, timeout=15):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return Response(method, url, data, r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Response(method, url, data, e.code, e.headers, e.read())


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------- the server


class Server:
    def __init__(self, binary, data_dir, alg):
        self.binary, self.data_dir, self.alg = binary, data_dir, alg
        self.proc = None
        self.port = None
        self.log_path = os.path.join(data_dir, "server.log")

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30.0):
        for _attempt in range(5):
            self.port = free_port()
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [
                        self.binary, "serve",
                        "--data-dir", self.data_dir,
                        "--listen", f"127.0.0.1:{self.port}",
                        "--access-token-alg", self.alg,
                        "--registry-poll-ms", "100",
                    ],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )
            finally:
                log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break  # died: maybe the port was taken meanwhile; retry
                try:
                    if http("GET", self.base + "/healthz", timeout=2).status == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError(f"server did not answer /healthz within {timeout}s\n{self.log_tail()}")
        raise RuntimeError(f"server would not start\n{self.log_tail()}")

    def stop(self):
        """SIGTERM, then SIGKILL after 15 s. Returns the exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no server log)"
        ansi = re.compile(r"\x1b\[[0-9;]*m")
        return "server log (last lines):\n" + "\n".join("    " + ansi.sub("", l) for l in lines[-n:])


def admin(binary, data_dir, *args):
    cmd = [binary, *args, "--data-dir", data_dir, "--json"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(
            f"admin command failed (exit {p.returncode}): {' '.join(cmd)}\n"
            f"stdout: {p.stdout.decode(errors='replace')}\nstderr: {p.stderr.decode(errors='replace')}"
        )
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        raise RuntimeError(f"admin command printed no JSON object: {' '.join(cmd)}\n{p.stdout!r}") from e


# --------------------------------------------------------------- the keys


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(private_key):
    pub = private_key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(pub, as_dict=True)
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(pub, as_dict=True)
    return OKPAlgorithm.to_jwk(pub, as_dict=True)


def thumbprint(jwk):
    """RFC 7638 JWK thumbprint (SHA-256), computed here independently."""
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canon = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canon.encode()).digest())


def public_pem(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class ClientKey:
    def __init__(self, label, make, algs):
        self.label, self.make, self.algs = label, make, algs
        self.key = make()
        self.other = make()  # a key of the same type that is never registered


def client_keys():
    return [
        ClientKey("rsa2048", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), ["RS256", "PS256"]),
        ClientKey("ec-p256", lambda: ec.generate_private_key(ec.SECP256R1()), ["ES256"]),
        ClientKey("ec-p384", lambda: ec.generate_private_key(ec.SECP384R1()), ["ES384"]),
        ClientKey("ed25519", lambda: ed25519.Ed25519PrivateKey.generate(), ["EdDSA"]),
    ]


# ------------------------------------------------------------------ a run


class Run:
    def __init__(self, checks, binary, server_alg, keys, key_format, keep):
        self.c, self.binary, self.alg = checks, binary, server_alg
        self.keys, self.key_format, self.keep = keys, key_format, keep
        self.data_dir = tempfile.mkdtemp(prefix=f"jwtgrant-pyjwt-{server_alg}-")
        self.server = Server(binary, self.data_dir, server_alg)
        self.integrations = {}  # label -> (integration_key, kid)
        self.aud_i = 0

    def admin(self, *args):
        return admin(self.binary, self.data_dir, *args)

    # --- setup through the admin commands -------------------------------
    def register_key(self, ikey, private_key, label):
        jwk = public_jwk(private_key)
        if self.key_format == "jwk":
            path = os.path.join(self.data_dir, f"{label}.jwk.json")
            with open(path, "w") as f:
                json.dump(jwk, f)
        else:
            path = os.path.join(self.data_dir, f"{label}.pub.pem")
            with open(path, "wb") as f:
                f.write(public_pem(private_key))
        out = self.admin("integration", "add-key", ikey, "--public-key", path)
        kid = out.get("kid")
        self.c.check(
            f"add-key {label} ({self.key_format}) kid is the RFC 7638 thumbprint",
            kid == thumbprint(jwk), f"kid={kid!r}, thumbprint computed here={thumbprint(jwk)!r}",
        )
        return kid

    def setup(self):
        self.c.begin(f"server alg {self.alg}: setup (client keys registered as {self.key_format.upper()})")
        suffix = uuid.uuid4().hex[:8]
        user = self.admin("user", "create", "--email", f"pyjwt-{suffix}@example.com", "--name", "Py JWT")
        self.user_id = user["user_id"]
        acct = self.admin("account", "create", "--user", self.user_id, "--name", "PyJWT Account",
                          "--base-uri", "https://demo.example.com", "--default")
        self.account_id = acct["account_id"]
        for ck in self.keys:
            integ = self.admin("integration", "create", "--name", f"pyjwt {ck.label}")
            ikey = integ["integration_key"]
            kid = self.register_key(ikey, ck.key, ck.label)
            self.admin("consent", "grant", "--user", self.user_id, "--integration", ikey,
                       "--scope", "signature", "--scope", "impersonation")
            self.integrations[ck.label] = (ikey, kid)
        # An integration allowed application tokens (no consent, no user).
        self.app_key = ec.generate_private_key(ec.SECP256R1())
        integ = self.admin("integration", "create", "--name", "pyjwt app", "--scope", "signature",
                           "--allow-application-tokens")
        self.app_ikey = integ["integration_key"]
        self.c.check("integration create --allow-application-tokens sets the flag",
                     integ.get("allow_application_tokens") is True, json.dumps(integ))
        self.app_kid = self.register_key(self.app_ikey, self.app_key, "app-ec-p256")

    # --- helpers --------------------------------------------------------
    def next_aud(self):
        """Rotates through every accepted audience form, string and array."""
        host = f"127.0.0.1:{self.server.port}"
        forms = [
            host,
            self.server.base,
            self.server.base + "/oauth/token",
            ["https://not-this-server.example", self.server.base + "/oauth/token"],
        ]
        aud = forms[self.aud_i % len(forms)]
        self.aud_i += 1
        return aud

    def claims(self, iss, sub, scope=USER_SCOPE, aud=None):
        now = int(time.time())
        c = {
            "iss": iss,
            "aud": aud if aud is not None else self.next_aud(),
            "iat": now,
            "exp": now + 3600,
            "jti": str(uuid.uuid4()),
            "scope": scope,
        }
        if sub is not None:
            c["sub"] = sub
        return c

    def token_request(self, assertion, content_type="application/x-www-form-urlencoded"):
        body = urllib.parse.urlencode({"grant_type": GRANT_TYPE, "assertion": assertion}).encode()
        return http("POST", self.server.base + "/oauth/token", body, {"Content-Type": content_type})

    def expect_refused(self, name, assertion, codes=("invalid_grant",), desc_prefix=None):
        r = self.token_request(assertion)
        j = r.json() or {}
        ok = r.status == 400 and j.get("error") in codes
        if ok and desc_prefix:
            ok = str(j.get("error_description", "")).startswith(desc_prefix)
        want = f"400 {'/'.join(codes)}" + (f" with description starting {desc_prefix!r}" if desc_prefix else "")
        self.c.check(f"{name}: refused ({want})", ok, r.describe())
        return r

    def verify_access_token(self, name, token, sub, client_id, scope):
        """Verify with PyJWT against the server's JWKS; return the claims or None."""
        c = self.c
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            c.check(f"{name}: access token is a JWS PyJWT can parse", False, repr(e))
            return None
        c.check(f"{name}: access token header typ is at+jwt", header.get("typ") == "at+jwt", json.dumps(header))
        c.check(f"{name}: access token header alg is {self.alg}", header.get("alg") == self.alg, json.dumps(header))
        c.check(f"{name}: access token header has a kid", bool(header.get("kid")), json.dumps(header))
        try:
            signing_key = self.jwks_client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token, signing_key, algorithms=[self.alg],
                audience=self.server.base, issuer=self.server.base, leeway=5,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except Exception as e:  # noqa: BLE001 - report any verification failure
            c.check(f"{name}: access token verifies with PyJWT (JWKS, aud, iss, exp)", False,
                    f"{type(e).__name__}: {e}; header={json.dumps(header)}")
            return None
        c.check(f"{name}: access token verifies with PyJWT (JWKS, aud, iss, exp)", True)
        expect = {"sub": sub, "client_id": client_id, "scope": scope}
        got = {k: claims.get(k) for k in expect}
        c.check(f"{name}: access token sub/client_id/scope", got == expect,
                f"expected {expect}, got {got}; all claims {json.dumps(claims)}")
        c.check(f"{name}: access token lifetime is 3600 s", claims["exp"] - claims["iat"] == 3600,
                json.dumps(claims))
        return claims

    def exchange_ok(self, name, assertion, sub, client_id, scope, content_type="application/x-www-form-urlencoded"):
        c = self.c
        r = self.token_request(assertion, content_type)
        j = r.json() or {}
        if not c.check(f"{name}: token endpoint answers 200", r.status == 200, r.describe()):
            return None
        shape_ok = (
            j.get("token_type") == "Bearer"
            and type(j.get("expires_in")) is int
            and j.get("scope") == scope
            and isinstance(j.get("access_token"), str)
            and "refresh_token" not in j
        )
        c.check(f"{name}: response has token_type Bearer, integer expires_in, scope {scope!r}, no refresh_token",
                shape_ok, r.describe())
        c.check(f"{name}: response has Cache-Control no-store",
                "no-store" in (r.headers.get("Cache-Control") or ""), f"Cache-Control: {r.headers.get('Cache-Control')!r}")
        token = j.get("access_token")
        if not token:
            return None
        self.verify_access_token(name, token, sub, client_id, scope)
        return token

    def check_userinfo(self, name, token):
        r = http("GET", self.server.base + "/oauth/userinfo", headers={"Authorization": f"Bearer {token}"})
        j = r.json() or {}
        if not self.c.check(f"{name}: userinfo answers 200", r.status == 200, r.describe()):
            return
        accounts = j.get("accounts") or []
        acct = next((a for a in accounts if a.get("account_id") == self.account_id), None)
        ok = (
            j.get("sub") == self.user_id
            and j.get("name") == "Py JWT"
            and str(j.get("email", "")).startswith("pyjwt-")
            and acct is not None
            and acct.get("is_default") is True
            and acct.get("base_uri") == "https://demo.example.com"
            and acct.get("account_name") == "PyJWT Account"
        )
        self.c.check(f"{name}: userinfo names the user and the default account", ok, r.describe())

    # --- the checks ------------------------------------------------------
    def run(self):
        failures_before = len(self.c.failures)
        try:
            self.setup()
            self.server.start()
            self.checks()
        except Exception as e:  # noqa: BLE001
            self.c.error(f"server alg {self.alg}: run aborted", e)
        finally:
            code = self.server.stop()
            if self.server.proc is not None:
                self.c.begin(f"server alg {self.alg}: shutdown")
                self.c.check(f"server alg {self.alg}: server exits 0 on SIGTERM", code == 0, f"exit code {code}")
            self.c.end_section()
            if len(self.c.failures) > failures_before and self.server.proc is not None:
                print(self.server.log_tail(), flush=True)
            if self.keep:
                print(f"  (kept data dir {self.data_dir})")
            else:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def checks(self):
        c = self.c
        c.begin(f"server alg {self.alg}: JWKS at {self.server.base}/oauth/jwks")
        r = http("GET", self.server.base + "/oauth/jwks")
        keys = (r.json() or {}).get("keys") or []
        c.check("JWKS answers 200 with keys", r.status == 200 and len(keys) > 0, r.describe())
        shape = SERVER_KEY_SHAPE[self.alg]
        c.check(f"JWKS holds a {shape} key", any(all(k.get(f) == v for f, v in shape.items()) for k in keys),
                r.describe())
        c.check("JWKS holds no private key members",
                not any(m in k for k in keys for m in ("d", "p", "q", "dp", "dq", "qi")), r.describe())
        try:
            jwk_set = jwt.PyJWKSet.from_dict(r.json())
            c.check("PyJWKSet parses every JWKS key", len(jwk_set.keys) == len(keys),
                    f"{len(jwk_set.keys)} of {len(keys)} parsed")
        except Exception as e:  # noqa: BLE001
            c.error("PyJWKSet parses the JWKS", e)
        self.jwks_client = jwt.PyJWKClient(self.server.base + "/oauth/jwks", cache_keys=False, lifespan=1)

        first_user_assertion = None
        for ck in self.keys:
            ikey, kid = self.integrations[ck.label]
            for alg in ck.algs:
                c.begin(f"server alg {self.alg}: user token, client key {ck.label}, assertion alg {alg}")
                for with_kid in (True, False):
                    name = f"{alg} {'with kid' if with_kid else 'without kid'}"
                    claims = self.claims(ikey, self.user_id)
                    headers = {"kid": kid} if with_kid else None
                    assertion = jwt.encode(claims, ck.key, algorithm=alg, headers=headers)
                    token = self.exchange_ok(f"{name} aud={claims['aud']!r}", assertion,
                                             self.user_id, ikey, USER_SCOPE)
                    if token:
                        self.check_userinfo(name, token)
                    if first_user_assertion is None:
                        first_user_assertion = assertion

            c.begin(f"server alg {self.alg}: forged assertions, client key {ck.label}")
            alg = ck.algs[0]
            for with_kid in (True, False):
                headers = {"kid": kid} if with_kid else None
                forged = jwt.encode(self.claims(ikey, self.user_id), ck.other, algorithm=alg, headers=headers)
                self.expect_refused(f"{alg} signed by an unregistered key, {'with' if with_kid else 'without'} kid",
                                    forged, desc_prefix="no_valid_keys_or_signatures")
            good = jwt.encode(self.claims(ikey, self.user_id), ck.key, algorithm=alg)
            h, p, s = good.split(".")
            claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
            claims["sub"] = str(uuid.uuid4())  # payload changed, signature kept
            tampered = ".".join([h, b64url(json.dumps(claims).encode()), s])
            self.expect_refused(f"{alg} payload altered after signing", tampered)

        ikey, kid = self.integrations["rsa2048"]
        rsa_key = next(ck for ck in self.keys if ck.label == "rsa2048").key
        c.begin(f"server alg {self.alg}: symmetric and unsigned assertions")
        hs = jwt.encode(self.claims(ikey, self.user_id), "a-shared-secret-of-32-bytes-long", algorithm="HS256")
        self.expect_refused("HS256 assertion (random secret)", hs)
        # Algorithm confusion: HS256 keyed with the registered public key's PEM
        # (PyJWT rightly refuses to do this, so the MAC is made by hand).
        for label, hdr in (("with kid", {"alg": "HS256", "typ": "JWT", "kid": kid}), ("without kid", {"alg": "HS256", "typ": "JWT"})):
            signing_input = b64url(json.dumps(hdr).encode()) + "." + b64url(json.dumps(self.claims(ikey, self.user_id)).encode())
            mac = hmac.new(public_pem(rsa_key), signing_input.encode(), hashlib.sha256).digest()
            self.expect_refused(f"HS256 keyed with the integration's public key PEM, {label}",
                                signing_input + "." + b64url(mac))
        none_tok = jwt.encode(self.claims(ikey, self.user_id), None, algorithm="none")
        self.expect_refused("alg none assertion", none_tok)

        c.begin(f"server alg {self.alg}: assertions that break a claim rule")
        ikey, kid = self.integrations["ec-p256"]
        ec_key = next(ck for ck in self.keys if ck.label == "ec-p256").key
        bad = self.claims(ikey, self.user_id, aud="https://not-this-server.example/oauth/token")
        self.expect_refused("aud naming another server", jwt.encode(bad, ec_key, algorithm="ES256"))
        bad = self.claims(ikey, self.user_id)
        bad["iat"], bad["exp"] = bad["iat"] - 7200, bad["iat"] - 3600
        self.expect_refused("exp an hour past", jwt.encode(bad, ec_key, algorithm="ES256"))
        bad = self.claims(ikey, self.user_id)
        del bad["exp"]
        self.expect_refused("no exp", jwt.encode(bad, ec_key, algorithm="ES256"))
        bad = self.claims(str(uuid.uuid4()), self.user_id)
        self.expect_refused("unknown iss", jwt.encode(bad, ec_key, algorithm="ES256"),
                            desc_prefix="issuer_not_found")
        bad = self.claims(ikey, str(uuid.uuid4()))
        self.expect_refused("unknown sub", jwt.encode(bad, ec_key, algorithm="ES256"),
                            desc_prefix="user_not_found")

        c.begin(f"server alg {self.alg}: replay")
        if first_user_assertion:
            self.expect_refused("the first accepted assertion sent again (same jti)", first_user_assertion)

        c.begin(f"server alg {self.alg}: application token (integration with --allow-application-tokens)")
        claims = self.claims(self.app_ikey, None, scope=APP_SCOPE)
        assertion = jwt.encode(claims, self.app_key, algorithm="ES256")
        self.exchange_ok(f"ES256 without sub aud={claims['aud']!r}", assertion, self.app_ikey, self.app_ikey,
                         APP_SCOPE, content_type="application/x-www-form-urlencoded;charset=UTF-8")
        claims = self.claims(self.app_ikey, None, scope=APP_SCOPE)
        claims["sub"] = None
        assertion = jwt.encode(claims, self.app_key, algorithm="ES256", headers={"kid": self.app_kid})
        self.exchange_ok("ES256 with \"sub\": null", assertion, self.app_ikey, self.app_ikey, APP_SCOPE)
        ikey, _ = self.integrations["ec-p256"]
        ec_key = next(ck for ck in self.keys if ck.label == "ec-p256").key
        assertion = jwt.encode(self.claims(ikey, None, scope=APP_SCOPE), ec_key, algorithm="ES256")
        self.expect_refused("no sub from an integration not allowed application tokens", assertion,
                            codes=("invalid_grant", "unauthorized_client"))

        c.begin(f"server alg {self.alg}: a token obtained through the Rust SDK (`jwtgrant token`) verifies in PyJWT")
        ikey, _ = self.integrations["ec-p256"]
        key_path = os.path.join(self.data_dir, "sdk-client.pem")
        with open(key_path, "wb") as f:
            f.write(ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        os.chmod(key_path, 0o600)
        out = subprocess.run([self.binary, "token", "--server", self.server.base, "--integration-key", ikey,
                              "--user-id", self.user_id, "--key", key_path],
                             capture_output=True, text=True, timeout=60)
        if c.check("jwtgrant token (the SDK) exits 0", out.returncode == 0, out.stderr):
            self.verify_access_token("SDK token", out.stdout.strip(), self.user_id, ikey, USER_SCOPE)

        c.begin(f"server alg {self.alg}: userinfo with a bad token")
        r = http("GET", self.server.base + "/oauth/userinfo", headers={"Authorization": "Bearer not.a.token"})
        c.check("userinfo refuses a garbage token with 401 and WWW-Authenticate invalid_token",
                r.status == 401 and "invalid_token" in (r.headers.get("WWW-Authenticate") or ""),
                r.describe() + f"\n         WWW-Authenticate: {r.headers.get('WWW-Authenticate')!r}")


# ------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("JWTGRANT_BIN"),
                    help="path to the jwtgrant binary (default: $JWTGRANT_BIN)")
    ap.add_argument("--alg", action="append", choices=SERVER_ALGS,
                    help="access-token algorithm(s) to run the server with (default: all three)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directories")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every passing check too")
    args = ap.parse_args(argv)
    if not args.bin:
        ap.error("give the binary with --bin PATH or JWTGRANT_BIN")
    binary = os.path.abspath(args.bin)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        ap.error(f"not an executable file: {binary}")

    # SIGTERM/SIGINT to this script still runs the finally blocks that stop the servers.
    def _on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    print(f"jwtgrant binary: {binary}")
    print(f"PyJWT {jwt.__version__}, python {sys.version.split()[0]}")
    checks = Checks(args.verbose)
    keys = client_keys()
    # Client keys go in as PEM SubjectPublicKeyInfo or as JWK, alternating by run.
    formats = {"ES256": "pem", "RS256": "jwk", "EdDSA": "pem"}
    interrupted = False
    for alg in args.alg or SERVER_ALGS:
        try:
            Run(checks, binary, alg, keys, formats[alg], args.keep).run()
        except KeyboardInterrupt as e:
            checks.check("interrupted", False, str(e))
            interrupted = True
            break

    checks.end_section()
    print()
    if checks.failures:
        print(f"FAILED checks ({len(checks.failures)}):")
        for f in checks.failures:
            print(f"  - {f}")
    print(f"pyjwt-interop: {checks.passed} passed, {len(checks.failures)} failed")
    return 1 if checks.failures or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Authlib's PrivateKeyJWT client authentication against a running jwtgrant.

Run by run.sh, which starts the server and registers the integrations; it passes
them in JG_* environment variables. Every client assertion here is signed by
Authlib (authlib.oauth2.rfc7523.PrivateKeyJWT, unchanged defaults unless a check
says otherwise), every request is made by Authlib's requests-based OAuth2Session
or, for replays, by requests with a body Authlib built. Access tokens are checked
against the server's JWKS with joserfc (Authlib's own JOSE dependency).

Prints one PASS or FAIL line per check; exits 1 when any check failed.
"""

import base64
import json
import os
import subprocess
import sys
import time
import traceback
from urllib.parse import parse_qs

import authlib
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

URL = os.environ["JG_URL"]
BIN = os.environ["JG_BIN"]
DATA = os.environ["JG_DATA"]
IK = os.environ["JG_IK"]
KID = os.environ["JG_KID"]
EC_IK = os.environ["JG_EC_IK"]
NOAPP_IK = os.environ["JG_NOAPP_IK"]


def read(path_var):
    with open(os.environ[path_var], encoding="utf-8") as f:
        return f.read()


RSA_PEM = read("JG_KEY_FILE")
EC_PEM = read("JG_EC_KEY_FILE")
NOAPP_PEM = read("JG_NOAPP_KEY_FILE")
STRANGER_PEM = read("JG_STRANGER_KEY_FILE")

failures = []


def check(name, fn):
    try:
        fn()
    except Exception as error:  # every kind of failure is one FAIL line
        failures.append(name)
        print(f"FAIL {name}: {type(error).__name__}: {error}")
        if os.environ.get("JG_VERBOSE"):
            traceback.print_exc()
    else:
        print(f"PASS {name}")


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def unverified(jws):
    """Header and claims of a compact JWS, read without verifying (for checks only)."""

    def part(segment):
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, payload, _ = jws.split(".")
    return part(header), part(payload)


class Client:
    """An Authlib session authenticating with PrivateKeyJWT; records what it sent."""

    def __init__(self, client_id, key, audience=None, alg=None, headers=None, claims=None):
        self.session = OAuth2Session(
            client_id,
            key,
            token_endpoint_auth_method="private_key_jwt",
            revocation_endpoint_auth_method="private_key_jwt",
        )
        # PrivateKeyJWT(token_endpoint) signs aud = that URL; without it Authlib
        # signs aud = the URL of each request (see the introspection check below).
        self.session.register_client_auth_method(
            PrivateKeyJWT(audience, alg=alg, headers=headers, claims=claims)
        )
        self.responses = []
        self.session.hooks["response"].append(self._record)

    def _record(self, response, *args, **kwargs):
        self.responses.append(response)

    @property
    def last(self):
        return self.responses[-1]

    def last_assertion(self):
        """The client_assertion of the last request Authlib sent."""
        form = sent_form(self.last)
        expect(
            form.get("client_assertion_type") == ASSERTION_TYPE,
            f"Authlib sent no client_assertion_type: {self.last.request.body!r}",
        )
        return form["client_assertion"]

    def token(self, **kwargs):
        return self.session.fetch_token(
            metadata["token_endpoint"], grant_type="client_credentials", **kwargs
        )


def expect_refused(client, call, status, error, endpoint):
    try:
        answer = call()
    except OAuthError as refusal:
        expect(refusal.error == error, f"error {refusal.error!r} ({refusal.description}), want {error}")
    else:
        # introspect/revoke return the raw response instead of raising
        if isinstance(answer, requests.Response):
            body = answer.json()
            expect(body.get("error") == error, f"{endpoint} answered {answer.status_code} {body}")
        else:
            raise AssertionError(f"{endpoint} gave a token: {answer}")
    got = client.last
    expect(got.status_code == status, f"{endpoint}: HTTP {got.status_code}, want {status}: {got.text}")
    expect("no-store" in got.headers.get("Cache-Control", ""), "error response without Cache-Control: no-store")
    return got.json()


def sent_form(response):
    """The form body of the request that gave this response."""
    body = response.request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    return {k: v[0] for k, v in parse_qs(body).items()}


def replay(response):
    """Send exactly the request Authlib sent again, with requests."""
    sent = response.request
    return requests.post(
        sent.url,
        data=sent.body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )


def jg(*args):
    return subprocess.run(
        [BIN, "--data-dir", DATA, *args], check=True, capture_output=True, text=True
    ).stdout


# --- discovery ---------------------------------------------------------------
metadata = requests.get(f"{URL}/.well-known/oauth-authorization-server", timeout=10).json()
jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
print(f"Authlib {authlib.__version__} against {URL}")


def discovery():
    expect(metadata["issuer"] == URL, f"issuer {metadata['issuer']}")
    expect(
        "client_credentials" in metadata["grant_types_supported"],
        f"grant_types_supported {metadata['grant_types_supported']}",
    )
    for field in (
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ):
        expect("private_key_jwt" in metadata[field], f"{field}: {metadata[field]}")
    algs = metadata["token_endpoint_auth_signing_alg_values_supported"]
    expect({"RS256", "ES256"} <= set(algs), f"signing algs {algs}")


check("metadata lists client_credentials and private_key_jwt (token, introspection, revocation)", discovery)

# --- the client_credentials grant with Authlib's defaults ---------------------
main = Client(IK, RSA_PEM, metadata["token_endpoint"])
state = {}


def access_token_claims(token):
    claims = jwt.decode(token, jwks).claims
    expect(claims["iss"] == URL, f"iss {claims['iss']}")
    expect(claims["sub"] == IK, f"sub {claims['sub']}, want the integration key")
    expect(claims["client_id"] == IK, f"client_id {claims.get('client_id')}")
    return claims


def client_credentials_defaults():
    token = main.token()
    header, assertion = unverified(main.last_assertion())
    # What Authlib signed: the server's defaults must take it unchanged.
    expect(header["alg"] == "RS256", f"Authlib header {header}")
    expect(assertion["iss"] == assertion["sub"] == IK, f"Authlib iss/sub {assertion}")
    expect(assertion["aud"] == metadata["token_endpoint"], f"Authlib aud {assertion['aud']}")
    expect(assertion["exp"] - assertion["iat"] == 3600, f"Authlib lifetime {assertion['exp'] - assertion['iat']}")
    expect(assertion.get("jti"), "Authlib sent no jti")
    expect(token["token_type"].lower() == "bearer", f"token_type {token['token_type']}")
    expect(isinstance(token.get("expires_in"), int), f"expires_in {token.get('expires_in')!r}")
    expect("refresh_token" not in token, "client_credentials must not give a refresh token")
    access_token_claims(token["access_token"])
    state["token"] = token["access_token"]
    state["granted"] = main.last


check(
    "client_credentials with PrivateKeyJWT(token_endpoint): RS256, iat+3600, aud = token endpoint",
    client_credentials_defaults,
)


def client_credentials_issuer_audience():
    client = Client(IK, RSA_PEM, metadata["issuer"])
    token = client.token(scope="signature")
    _, assertion = unverified(client.last_assertion())
    expect(assertion["aud"] == URL, f"aud {assertion['aud']}")
    expect(token.get("scope") == "signature", f"scope {token.get('scope')!r}")
    claims = access_token_claims(token["access_token"])
    expect(claims.get("scope") == "signature", f"token scope {claims.get('scope')!r}")


check("client_credentials with aud = the issuer and scope=signature", client_credentials_issuer_audience)


def client_credentials_es256():
    client = Client(EC_IK, ECKey.import_key(EC_PEM), metadata["token_endpoint"], alg="ES256")
    token = client.token()
    header, _ = unverified(client.last_assertion())
    expect(header["alg"] == "ES256", f"header {header}")
    claims = jwt.decode(token["access_token"], jwks).claims
    expect(claims["sub"] == EC_IK and claims["client_id"] == EC_IK, f"claims {claims}")


check("client_credentials with an ES256 key (keygen + add-key)", client_credentials_es256)


def typ_client_authentication():
    client = Client(IK, RSA_PEM, metadata["token_endpoint"], headers={"typ": "client-authentication+jwt"})
    client.token()
    header, _ = unverified(client.last_assertion())
    expect(header.get("typ") == "client-authentication+jwt", f"header {header}")


check("typ client-authentication+jwt is accepted", typ_client_authentication)

# --- introspection and revocation, authenticated by Authlib -------------------


def introspect_active():
    answer = main.session.introspect_token(metadata["introspection_endpoint"], token=state["token"])
    expect(answer.status_code == 200, f"HTTP {answer.status_code}: {answer.text}")
    body = answer.json()
    expect(body.get("active") is True, f"introspection {body}")
    expect(body.get("client_id") == IK and body.get("sub") == IK, f"introspection {body}")
    _, assertion = unverified(main.last_assertion())
    expect(assertion["aud"] == metadata["token_endpoint"], f"aud {assertion['aud']}")


check("introspect_token with private_key_jwt: the token is active, sub = client_id = integration", introspect_active)


def revoke_then_inactive():
    answer = main.session.revoke_token(metadata["revocation_endpoint"], token=state["token"])
    expect(answer.status_code == 200, f"revoke: HTTP {answer.status_code}: {answer.text}")
    answer = main.session.introspect_token(metadata["introspection_endpoint"], token=state["token"])
    expect(answer.status_code == 200, f"introspect: HTTP {answer.status_code}: {answer.text}")
    expect(answer.json() == {"active": False}, f"after revocation: {answer.json()}")


check("revoke_token with private_key_jwt, then the token introspects inactive", revoke_then_inactive)

# --- refusals ----------------------------------------------------------------


def replayed_at_token_endpoint():
    again = replay(state["granted"])
    expect(again.status_code == 401, f"replay: HTTP {again.status_code}: {again.text}")
    expect(again.json().get("error") == "invalid_client", f"replay: {again.json()}")
    expect("access_token" not in again.json(), "replay gave a token")


check("the same client assertion again at the token endpoint: 401 invalid_client", replayed_at_token_endpoint)


def replayed_at_introspection():
    # The grant's assertion (aud = token endpoint, which introspection accepts too).
    assertion = sent_form(state["granted"])["client_assertion"]
    again = requests.post(
        metadata["introspection_endpoint"],
        data={
            "token": "x",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
        timeout=10,
    )
    expect(again.status_code == 401, f"HTTP {again.status_code}: {again.text}")
    expect(again.json().get("error") == "invalid_client", f"{again.json()}")


check("the grant's client assertion replayed at introspection: 401 invalid_client", replayed_at_introspection)


def stranger_key():
    client = Client(IK, STRANGER_PEM, metadata["token_endpoint"])
    expect_refused(client, client.token, 401, "invalid_client", "token")


check("an assertion signed by a key the integration does not have: 401 invalid_client", stranger_key)


def stranger_key_introspection():
    client = Client(IK, STRANGER_PEM, metadata["token_endpoint"])
    expect_refused(
        client,
        lambda: client.session.introspect_token(metadata["introspection_endpoint"], token="x"),
        401,
        "invalid_client",
        "introspection",
    )


check("introspection with an assertion signed by another key: 401 invalid_client", stranger_key_introspection)


def other_integrations_key():
    # iss = sub = the ES256 integration, signed with the RS256 integration's key.
    client = Client(EC_IK, RSA_PEM, metadata["token_endpoint"])
    expect_refused(client, client.token, 401, "invalid_client", "token")


check("another integration's key (keys are pinned to their integration): 401 invalid_client", other_integrations_key)


def per_request_audience():
    # PrivateKeyJWT() without token_endpoint signs aud = the URL of each request:
    # at introspection that is the introspection URL, which is neither the issuer
    # nor the token endpoint.
    client = Client(IK, RSA_PEM)
    expect_refused(
        client,
        lambda: client.session.introspect_token(metadata["introspection_endpoint"], token="x"),
        401,
        "invalid_client",
        "introspection",
    )
    _, assertion = unverified(client.last_assertion())
    expect(assertion["aud"] == metadata["introspection_endpoint"], f"aud {assertion['aud']}")


check("aud = the introspection URL (PrivateKeyJWT without token_endpoint): 401 invalid_client", per_request_audience)


def too_long():
    now = int(time.time())
    client = Client(IK, RSA_PEM, metadata["token_endpoint"], claims={"iat": now, "exp": now + 7200})
    body = expect_refused(client, client.token, 401, "invalid_client", "token")
    expect("lifetime" in body.get("error_description", "") or "exp" in body.get("error_description", ""),
           f"description does not name the lifetime rule: {body}")


check("an assertion living 7200 s (over the 3600 s default cap): 401 invalid_client", too_long)


def wrong_typ():
    client = Client(IK, RSA_PEM, metadata["token_endpoint"], headers={"typ": "at+jwt"})
    expect_refused(client, client.token, 401, "invalid_client", "token")


check("typ at+jwt: 401 invalid_client", wrong_typ)


def fixed_claims_reuse_jti():
    # Authlib 1.9 stores the jti it generates in the claims dict given to
    # PrivateKeyJWT, so a client built with claims= sends the same jti every time:
    # the server must take the first and refuse the second as a replay.
    client = Client(IK, RSA_PEM, metadata["token_endpoint"], claims={"purpose": "interop"})
    client.token()
    first = unverified(client.last_assertion())[1]["jti"]
    try:
        client.token()
        second_ok = True
    except OAuthError as refusal:
        second_ok = False
        expect(refusal.error == "invalid_client", f"error {refusal.error}")
    second = unverified(client.last_assertion())[1]["jti"]
    if first == second:
        expect(not second_ok, f"jti {first} was accepted twice")
        expect(client.last.status_code == 401, f"HTTP {client.last.status_code}")
    else:
        expect(second_ok, f"a fresh jti was refused: {client.last.text}")


check("a jti used twice (Authlib's PrivateKeyJWT(claims=...) keeps its first jti): 401 invalid_client", fixed_claims_reuse_jti)


def no_basic_challenge():
    client = Client(IK, STRANGER_PEM, metadata["token_endpoint"])
    expect_refused(client, client.token, 401, "invalid_client", "token")
    expect("Authorization" not in client.last.request.headers, "Authlib sent an Authorization header")
    challenge = client.last.headers.get("WWW-Authenticate")
    expect(challenge is None, f"WWW-Authenticate: {challenge} (PROTOCOL.md: only when Basic was tried)")


check("a private_key_jwt refusal has no WWW-Authenticate (Basic was not tried)", no_basic_challenge)


def no_application_tokens():
    client = Client(NOAPP_IK, NOAPP_PEM, metadata["token_endpoint"])
    expect_refused(client, client.token, 400, "unauthorized_client", "token")


check("client_credentials for an integration without --allow-application-tokens: 400 unauthorized_client", no_application_tokens)


def disabled_key():
    jg("integration", "disable-key", IK, KID, "--json")
    deadline = time.monotonic() + 5
    while True:
        client = Client(IK, RSA_PEM, metadata["token_endpoint"])
        try:
            client.token()
        except OAuthError as refusal:
            expect(refusal.error == "invalid_client", f"error {refusal.error}")
            expect(client.last.status_code == 401, f"HTTP {client.last.status_code}")
            return
        expect(time.monotonic() < deadline, "a disabled key still authenticates after 5 s")
        time.sleep(0.2)


check("a disabled key stops authenticating within the registry poll: 401 invalid_client", disabled_key)

print()
if failures:
    print(f"FAILED: {len(failures)} check(s): " + "; ".join(failures))
    sys.exit(1)
print("all Authlib checks passed")

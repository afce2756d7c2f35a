"""The Authlib peer: an RFC 7523 JWT bearer grant server built the way Authlib's
docs build one (Flask, `AuthorizationServer`, `JWTBearerGrant`, RFC 9068 JWT access
tokens), doing the work jwtgrant does for the same request:

- the assertion's RS256 signature checked with the integration's public key (its
  JWK), `iss`, `aud` (this server's issuer, token URL or bare host:port), `exp` with
  60 s of leeway (Authlib's JWTBearerGrant);
- `jti` required and single use across every worker: `SET NX` in Redis until the
  assertion's `exp` plus the leeway;
- `sub` names a known user who consented to the integration for every requested
  scope (DocuSign-style `scope` claim, or the form's `scope`), `impersonation` among
  them;
- an access token signed ES256 (RFC 9068 `at+jwt`), 3600 s, nothing stored.

Served by gunicorn (see run.sh). Configured by the environment: PEER_ISSUER,
PEER_CLIENT_ID, PEER_CLIENT_JWK (a file with the public JWK), PEER_USER_ID,
PEER_SCOPES, PEER_SIGNING_KEY (a PEM file with the private ES256 key), PEER_REDIS_URL.
"""

import json
import os
import time
from urllib.parse import urlsplit

import redis
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, InvalidGrantError, InvalidScopeError
from authlib.oauth2.rfc7523 import JWTBearerGrant
from authlib.oauth2.rfc7523.jwt_bearer import JWT_BEARER_GRANT_TYPE
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import Flask
from joserfc.jwk import ECKey, KeySet, RSAKey

ISSUER = os.environ["PEER_ISSUER"].rstrip("/")
CLIENT_ID = os.environ["PEER_CLIENT_ID"]
USER_ID = os.environ["PEER_USER_ID"]
SCOPES = os.environ.get("PEER_SCOPES", "signature impersonation").split()
LEEWAY = 60
with open(os.environ["PEER_CLIENT_JWK"]) as f:
    CLIENT_KEY = RSAKey.import_key(json.load(f))
with open(os.environ["PEER_SIGNING_KEY"]) as f:
    _signing = ECKey.import_key(f.read())
    _signing.ensure_kid()
    SIGNING_KEYS = KeySet([_signing])
REDIS = redis.Redis.from_url(os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/0"))
REPLAY_PREFIX = os.environ.get("PEER_REPLAY_PREFIX", "authlib-peer:jti:")


class Client(ClientMixin):
    def __init__(self, client_id, scopes):
        self.client_id = client_id
        self.scopes = scopes

    def get_client_id(self):
        return self.client_id

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_grant_type(self, grant_type):
        return grant_type == JWT_BEARER_GRANT_TYPE


class User:
    def __init__(self, user_id, consented):
        self.user_id = user_id
        # integration -> scopes the user consented to
        self.consented = consented

    def get_user_id(self):
        return self.user_id


CLIENTS = {CLIENT_ID: Client(CLIENT_ID, SCOPES)}
USERS = {USER_ID: User(USER_ID, {CLIENT_ID: set(SCOPES)})}


class Grant(JWTBearerGrant):
    def get_audiences(self):
        return [ISSUER, ISSUER + "/oauth/token", urlsplit(ISSUER).netloc]

    def resolve_issuer_client(self, issuer):
        return CLIENTS.get(issuer)

    def resolve_client_public_key(self, client):
        return CLIENT_KEY

    def authenticate_user(self, subject):
        return USERS.get(subject)

    def has_granted_permission(self, client, user):
        scopes = set(self.scope().split())
        return "impersonation" in scopes and scopes <= user.consented.get(
            client.get_client_id(), set()
        )

    def scope(self):
        # DocuSign-style: the assertion's `scope` claim, else the form's.
        return self.request.payload.scope or self._claims.get("scope") or ""

    def process_assertion_claims(self, assertion):
        claims = super().process_assertion_claims(assertion)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidGrantError(description="jti_required: the assertion has no jti")
        ttl = max(1, int(claims["exp"]) + LEEWAY - int(time.time()))
        key = REPLAY_PREFIX + claims["iss"] + "\0" + jti
        if not REDIS.set(key, 1, nx=True, ex=ttl):
            raise InvalidGrantError(description="jti_replayed: this assertion was used")
        self._claims = claims
        return claims

    def validate_requested_scope(self):
        scope = self.scope()
        if not scope or self.request.client.get_allowed_scope(scope) != scope:
            raise InvalidScopeError()

    def create_token_response(self):
        token = self.generate_token(
            scope=self.scope(), user=self.request.user, include_refresh_token=False
        )
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class TokenGenerator(JWTBearerTokenGenerator):
    def get_jwks(self):
        return SIGNING_KEYS

    def get_audiences(self, client, user, scope):
        return ISSUER + "/api"


app = Flask(__name__)
server = AuthorizationServer(
    app, query_client=CLIENTS.get, save_token=lambda token, request: None
)
server.register_grant(Grant)
server.register_token_generator(
    JWT_BEARER_GRANT_TYPE, TokenGenerator(issuer=ISSUER, alg="ES256")
)


@app.route("/oauth/token", methods=["POST"])
def issue_token():
    return server.create_token_response()


@app.route("/healthz")
def healthz():
    return "ok\n"

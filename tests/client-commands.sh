#!/usr/bin/env bash
# The client commands end to end, as a user types them: keygen -> integration
# add-key -> token -> verify, against a real server on a free loopback port.
# Usage: tests/client-commands.sh [path/to/jwtgrant]   (default target/debug/jwtgrant)
set -euo pipefail
cd "$(dirname "$0")/.."
jg="$(realpath "${1:-target/debug/jwtgrant}")"
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$jg" --data-dir data serve --listen "127.0.0.1:$port" --registry-poll-ms 100 2>server.log &
server=$!
for _ in $(seq 100); do curl -fsS "$url/readyz" >/dev/null 2>&1 && break; sleep 0.05; done

for alg in RS256 ES256 EdDSA; do
  name="client-$alg"
  "$jg" keygen --alg "$alg" --out "$name" >/dev/null
  [ "$(stat -c %a "$name.pem")" = 600 ] || fail "$name.pem is not mode 0600"
  [ -s "$name.pub.pem" ] && [ -s "$name.jwk.json" ] || fail "keygen wrote no public files"

  ik=$("$jg" --data-dir data integration create --name "$name" --allow-application-tokens)
  # PEM for one, JWK for the others: both are accepted by add-key.
  if [ "$alg" = RS256 ]; then pub="$name.pub.pem"; else pub="$name.jwk.json"; fi
  "$jg" --data-dir data integration add-key "$ik" --public-key "$pub" >/dev/null
  user=$("$jg" --data-dir data user create --email "$name@example.com" --name "Client $alg")
  "$jg" --data-dir data consent grant --user "$user" --integration "$ik" --scope signature impersonation >/dev/null
  sleep 0.3

  token=$("$jg" token --server "$url" --integration-key "$ik" --user-id "$user" --key "$name.pem")
  claims=$("$jg" verify --server "$url" "$token")
  echo "$claims" | grep -q "\"sub\": \"$user\"" || fail "verify did not show the user: $claims"
  "$jg" verify --server "$url" --scope impersonation "$token" >/dev/null || fail "scope check"
  if "$jg" verify --server "$url" --scope admin "$token" >/dev/null 2>&1; then fail "missing scope accepted"; fi
  if "$jg" verify --server "$url" --audience someone-else "$token" >/dev/null 2>&1; then fail "wrong audience accepted"; fi

  json=$("$jg" token --server "$url" --integration-key "$ik" --key "$name.pem" --scope signature --json)
  echo "$json" | grep -Eq '"expires_in":3[56][0-9]{2}[,}]' || fail "--json response: $json"

  # An OAuth error: message on stderr as "error: description", non-zero exit.
  set +e
  err=$("$jg" token --server "$url" --integration-key "$ik" --user-id "$(uuidgen 2>/dev/null || echo 00000000-0000-4000-8000-000000000000)" --key "$name.pem" 2>&1 >/dev/null)
  code=$?
  set -e
  [ "$code" -ne 0 ] || fail "an OAuth error exited 0"
  case "$err" in invalid_grant:*user_not_found*) ;; *) fail "unexpected error text: $err" ;; esac
  echo "ok: $alg keygen -> add-key -> token -> verify"
done
# keygen --bits: a 3072-bit RSA key, as its JWK's modulus says.
"$jg" keygen --alg RS256 --bits 3072 --out big >/dev/null
bits=$(python3 -c 'import base64,json,sys; n=json.load(open(sys.argv[1]))["n"]; print(len(base64.urlsafe_b64decode(n+"="*(-len(n)%4)))*8)' big.jwk.json)
[ "$bits" = 3072 ] || fail "keygen --bits 3072 wrote a $bits-bit key"
echo "ok: keygen --bits 3072"

# assertion: every option shows in the decoded header and claims (the last
# integration of the loop, EdDSA, with its user).
assertion=$("$jg" assertion --integration-key "$ik" --user-id "$user" --key "$name.pem" \
  --aud "127.0.0.1:$port" --aud "$url/oauth/token" --scope signature --scope extra \
  --lifetime 60 --no-jti --kid my-kid)
python3 - "$assertion" "$ik" "$user" "$port" "$url" <<'PY' || fail "assertion claims: $assertion"
import base64, json, sys
token, ik, user, port, url = sys.argv[1:]
def part(text):
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
header_b64, claims_b64, signature = token.split(".")
header, claims = part(header_b64), part(claims_b64)
assert header["alg"] == "EdDSA" and header["kid"] == "my-kid", header
assert claims["iss"] == ik and claims["sub"] == user, claims
assert claims["aud"] == [f"127.0.0.1:{port}", f"{url}/oauth/token"], claims
assert claims["scope"] == "signature extra", claims
assert claims["exp"] - claims["iat"] == 60, claims
assert "jti" not in claims, claims
assert signature
PY
if "$jg" assertion --integration-key "$ik" --key "$name.pem" --aud x --lifetime 7200 >/dev/null 2>&1; then
  fail "a lifetime past one hour was signed"
fi
echo "ok: assertion --scope --lifetime --no-jti --kid"

# token against a server known only by its token endpoint (no metadata used):
# `aud` is then the endpoint URL; --aud replaces it, and a wrong one is refused.
token=$("$jg" token --token-endpoint "$url/oauth/token" --integration-key "$ik" --key "$name.pem" --scope signature)
"$jg" verify --server "$url" --scope signature "$token" >/dev/null || fail "--token-endpoint token"
token=$("$jg" token --token-endpoint "$url/oauth/token" --aud "$url" --integration-key "$ik" --key "$name.pem" --scope signature)
"$jg" verify --server "$url" "$token" >/dev/null || fail "--aud token"
set +e
err=$("$jg" token --server "$url" --aud someone-else.example --integration-key "$ik" --key "$name.pem" --scope signature 2>&1 >/dev/null)
code=$?
set -e
[ "$code" -eq 2 ] || fail "a wrong --aud exited $code"
case "$err" in invalid_grant:*aud*) ;; *) fail "a wrong --aud: $err" ;; esac
if "$jg" token --server "$url" --token-endpoint "$url/oauth/token" --integration-key "$ik" --key "$name.pem" >/dev/null 2>&1; then
  fail "--server and --token-endpoint together were accepted"
fi
echo "ok: token --token-endpoint --aud"

# The client credentials grant, the client authenticated by a client assertion
# (private_key_jwt) signed with the key: the integration's own token.
shown=$("$jg" --data-dir data integration show "$ik")
echo "$shown" | grep -q "client authentication: private_key_jwt none  client credentials grant: yes" \
  || fail "integration show: $shown"
echo "$shown" | grep -q "client: confidential (private_key_jwt)" \
  || fail "integration show with a key and no secret is not confidential: $shown"
"$jg" --data-dir data integration show "$ik" --json | grep -q '"client_type":"confidential"' \
  || fail "integration show --json client_type: $("$jg" --data-dir data integration show "$ik" --json)"
token=$("$jg" token --grant client-credentials --server "$url" --integration-key "$ik" --key "$name.pem" --scope signature)
claims=$("$jg" verify --server "$url" --scope signature "$token")
echo "$claims" | grep -q "\"sub\": \"$ik\"" || fail "client credentials token's sub: $claims"
json=$("$jg" token --grant client-credentials --token-endpoint "$url/oauth/token" --integration-key "$ik" --key "$name.pem" --json)
echo "$json" | grep -Eq '"expires_in":3[56][0-9]{2}[,}]' || fail "client credentials --json: $json"
case "$json" in *refresh_token*) fail "a client credentials token came with a refresh token: $json" ;; esac
set +e
err=$("$jg" token --grant client-credentials --server "$url" --integration-key "$ik" --key client-RS256.pem 2>&1 >/dev/null)
code=$?
set -e
[ "$code" -eq 2 ] || fail "another integration's key exited $code"
case "$err" in invalid_client:*) ;; *) fail "another integration's key: $err" ;; esac
if "$jg" token --grant client-credentials --server "$url" --integration-key "$ik" --user-id "$user" --key "$name.pem" >/dev/null 2>&1; then
  fail "--user-id was accepted with --grant client-credentials"
fi
echo "ok: token --grant client-credentials"
echo "client commands: all passed"

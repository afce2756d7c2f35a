#!/usr/bin/env bash
# openid-client (npm, pinned in package.json and package-lock.json) as a private_key_jwt
# client of a real jwtgrant.
#
#   interop/node-client/run.sh PATH_TO_JWTGRANT
#
# Installs the library with `npm ci` (skipped when node_modules already holds the
# locked versions), starts `jwtgrant serve` on a free 127.0.0.1 port with a
# temporary data directory, registers what the test needs with the admin
# commands and runs test.mjs, which discovers the server from its RFC 8414
# metadata and uses openid-client's PrivateKeyJwt client authentication for the
# client_credentials grant, introspection and revocation. Every request goes to
# 127.0.0.1. Exit code: test.mjs's (0 = every check passed); 2 = setup failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH_TO_JWTGRANT   (e.g. target/debug/jwtgrant)" >&2
  exit 2
fi
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"

# Nothing from the caller's environment may redirect the server.
for v in $(compgen -e | grep -E '^JWTGRANT_' || true); do unset "$v"; done

command -v node >/dev/null || { echo "run.sh: node (>= 20) is required" >&2; exit 2; }
command -v npm >/dev/null || { echo "run.sh: npm is required" >&2; exit 2; }

# --- openid-client -----------------------------------------------------------
installed_ok() {
  (cd "$here" && node -e '
    const want = require("./package.json").dependencies;
    for (const [name, version] of Object.entries(want)) {
      if (require("./node_modules/" + name + "/package.json").version !== version) process.exit(1);
    }' 2>/dev/null)
}
if installed_ok; then
  echo "run.sh: reusing node_modules (already at the locked versions)"
else
  (cd "$here" && npm ci --no-audit --no-fund --prefer-offline)
fi

# --- a server of our own -----------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/jwtgrant-node-client.XXXXXX")"
data="$tmp/data"
server_pid=""
status=2
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" != 0 ] && [ -f "$tmp/server.log" ]; then
    echo "---- last lines of the server log ($tmp/server.log) ----" >&2
    tail -n 40 "$tmp/server.log" >&2 || true
    echo "---- (temporary directory kept: $tmp) ----" >&2
  else
    rm -rf "$tmp"
  fi
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

port="$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"
url="http://127.0.0.1:$port"

jg() { "$bin" --data-dir "$data" "$@"; }
field() { node -e '
  let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
    const v = JSON.parse(s)[process.argv[1]];
    if (v === undefined || v === null) { console.error("no field " + process.argv[1] + " in " + s); process.exit(1); }
    console.log(v);
  });' "$1"; }

mkdir -p "$data"
# The binary itself in the background (not through jg, which would put a
# subshell between $! and the server and leave the server running at exit).
"$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" --public-url "$url" \
  >"$tmp/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 150); do
  if curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: the server exited at start" >&2; exit 2
  fi
  sleep 0.1
done
curl -fsS -o /dev/null "$url/healthz" || { echo "run.sh: the server did not answer /healthz" >&2; exit 2; }
echo "run.sh: jwtgrant serving on $url (data in $data)"

# --- registrations -----------------------------------------------------------
# A machine client with an RS256 key (Authlib's PrivateKeyJWT default) ...
ik="$(jg integration create --name "openid-client machine client" --allow-application-tokens \
        --scope signature --scope impersonation --json | field integration_key)"
kid="$(jg integration generate-key "$ik" --alg RS256 --out "$tmp/ik.pem" --json | field kid)"
# ... one with an ES256 key, registered with keygen + add-key ...
ec="$(jg integration create --name "openid-client ES256 client" --allow-application-tokens --json \
        | field integration_key)"
jg keygen --alg ES256 --out "$tmp/ec" --json >/dev/null            # ec.pem, ec.pub.pem
jg integration add-key "$ec" --public-key "$tmp/ec.pub.pem" --json >/dev/null
# ... one that may not have application tokens, and a key nobody registered.
noapp="$(jg integration create --name "openid-client user-only client" --json | field integration_key)"
jg integration generate-key "$noapp" --alg RS256 --out "$tmp/noapp.pem" --json >/dev/null
jg keygen --alg RS256 --out "$tmp/stranger" --json >/dev/null
echo "run.sh: integrations $ik (RS256, kid $kid), $ec (ES256), $noapp (no application tokens)"
# An OpenID Connect relying party (a client secret, a redirect URI, `openid`) and
# a user with a password, for the code flow with an ID token.
rp="$(jg integration create --name "openid-client relying party" --scope openid --scope signature \
        --redirect-uri http://127.0.0.1:9/callback --json | field integration_key)"
echo "an RP secret of the node interop test" | jg integration set-secret "$rp" --stdin --json >/dev/null
rp_user="$(jg user create --email rp-user@example.com --name "RP User" --json | field user_id)"
echo "the RP user's password" | jg user set-password "$rp_user" --json >/dev/null
echo "run.sh: relying party $rp, user $rp_user"

# --- the test ----------------------------------------------------------------
set +e
JG_URL="$url" JG_BIN="$bin" JG_DATA="$data" \
JG_IK="$ik" JG_KID="$kid" JG_KEY_FILE="$tmp/ik.pem" \
JG_EC_IK="$ec" JG_EC_KEY_FILE="$tmp/ec.pem" \
JG_NOAPP_IK="$noapp" JG_NOAPP_KEY_FILE="$tmp/noapp.pem" \
JG_STRANGER_KEY_FILE="$tmp/stranger.pem" \
JG_RP="$rp" JG_RP_SECRET="an RP secret of the node interop test" JG_RP_USER="$rp_user" \
JG_RP_EMAIL="rp-user@example.com" JG_RP_PASSWORD="the RP user's password" \
  node "$here/test.mjs"
status=$?
set -e
exit "$status"

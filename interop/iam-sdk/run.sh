#!/usr/bin/env bash
# DocuSign IAM SDK (@docusign/iam-sdk, pinned in package.json) against a real jwtgrant.
#
#   interop/iam-sdk/run.sh PATH_TO_JWTGRANT
#
# Installs the SDK with `npm ci` (skipped when node_modules already holds the
# locked version), starts `jwtgrant serve` on a free 127.0.0.1 port with a
# temporary data directory, registers what the test needs with the admin
# commands and runs test.mjs, which drives the SDK's five auth operations
# (plus the login and consent pages over plain HTTP). Every request goes to
# 127.0.0.1. Exit code: test.mjs's (0 = every check passed); 2 = setup failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH_TO_JWTGRANT   (e.g. target/debug/jwtgrant)" >&2
  exit 2
fi
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"

# Nothing from the caller's environment may redirect the server or the SDK.
for v in $(compgen -e | grep -E '^(JWTGRANT_|DOCUSIGN_IAM_CLIENT_)' || true); do unset "$v"; done

command -v node >/dev/null || { echo "run.sh: node (>= 20) is required" >&2; exit 2; }
command -v npm >/dev/null || { echo "run.sh: npm is required" >&2; exit 2; }

# --- the SDK -----------------------------------------------------------------
installed_ok() {
  (cd "$here" && node -e '
    const want = require("./package.json").dependencies["@docusign/iam-sdk"];
    const got = require("./node_modules/@docusign/iam-sdk/package.json").version;
    process.exit(got === want ? 0 : 1);' 2>/dev/null)
}
if installed_ok; then
  echo "run.sh: reusing node_modules (@docusign/iam-sdk already at the locked version)"
else
  (cd "$here" && npm ci --no-audit --no-fund --prefer-offline)
fi

# --- a server of our own -----------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/jwtgrant-iam-sdk.XXXXXX")"
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
# The binary itself in the background (not through the jg function, which would
# put a subshell between $! and the server and leave the server running at exit).
"$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" --public-url "$url" \
  --accept-audience account-d.docusign.com >"$tmp/server.log" 2>&1 &
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
redirect="http://127.0.0.1:9/callback"   # nothing listens there; the test never follows it
email="ada.iam-sdk@example.com"
password="correct horse battery staple"

ik="$(jg integration create --name "IAM SDK confidential app" --redirect-uri "$redirect" \
        --scope signature --scope impersonation --json | field integration_key)"
jg integration generate-key "$ik" --alg RS256 --out "$tmp/ik.pem" --json >/dev/null
secret="$(jg integration set-secret "$ik" --json | field client_secret)"
pub="$(jg integration create --name "IAM SDK public app" --redirect-uri "$redirect" \
         --scope signature --scope impersonation --json | field integration_key)"
user_id="$(jg user create --email "$email" --name "Ada Lovelace" --json | field user_id)"
printf '%s\n' "$password" | jg user set-password "$user_id" >/dev/null
account_id="$(jg account create --user "$user_id" --name "Ada's account" \
               --base-uri https://demo.example.com --default --json | field account_id)"
org_account_id="$(jg account create --user "$user_id" --name "Ada's org account" \
               --base-uri https://eu.demo.example.com \
               --organization '{"organization_id":"9d1b8c5e-0a3f-4e8e-9a53-0c7d1e2f3a4b","links":[{"rel":"self","href":"https://demo.example.com/organizations/9d1b8c5e-0a3f-4e8e-9a53-0c7d1e2f3a4b"}]}' \
               --json | field account_id)"
jg consent grant --user "$user_id" --integration "$ik" --scope signature impersonation --json >/dev/null
echo "run.sh: confidential integration $ik (RS256 key, secret), public integration $pub, user $user_id"

# --- the test ----------------------------------------------------------------
set +e
JG_URL="$url" JG_BIN="$bin" JG_DATA="$data" JG_REDIRECT="$redirect" \
JG_IK="$ik" JG_SECRET="$secret" JG_KEY_FILE="$tmp/ik.pem" JG_PUB="$pub" \
JG_USER_ID="$user_id" JG_EMAIL="$email" JG_PASSWORD="$password" \
JG_ACCOUNT_ID="$account_id" JG_ORG_ACCOUNT_ID="$org_account_id" \
  node "$here/test.mjs"
status=$?
set -e
exit "$status"

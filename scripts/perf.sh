#!/usr/bin/env bash
# Reproduces the figures of docs/PERFORMANCE.md on this machine: builds the release
# binary, starts a server on a fresh SQLite data directory and drives it with
# `jwtgrant bench` (closed loop at saturation, open loop at 5,000/s, userinfo,
# introspection), then
# measures start-to-ready time. Usage: scripts/perf.sh [requests]
#
# scripts/perf.sh --audit-ab [rounds] [requests] instead measures what the audit
# trail costs: the same server and data directory alternately with the audit on and
# with --no-audit (A/B/A/B...), closed loop at 64 connections, and prints grants/s
# and server CPU per grant of each, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=full
if [ "${1:-}" = "--audit-ab" ]; then
  mode=audit-ab
  rounds="${2:-4}"
  shift $(( $# >= 2 ? 2 : 1 ))
fi
requests="${1:-40000}"
cargo build --release -q -p jwtgrant
bin="$PWD/target/release/jwtgrant"
data="$(mktemp -d)"
port=18090
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$data"' EXIT

start_server() {
  "$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" "$@" 2>"$data/server.log" &
  server=$!
  until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do sleep 0.02; done
}

bench() { "$bin" --data-dir "$data" bench --server "http://127.0.0.1:$port" --server-pid "$server" "$@"; }

if [ "$mode" = audit-ab ]; then
  results="$data/ab.txt"
  for round in $(seq 1 "$rounds"); do
    for variant in on off; do
      if [ "$variant" = on ]; then start_server; else start_server --no-audit; fi
      bench --requests "$requests" --concurrency 64 --json >"$data/run.json"
      python3 - "$variant" "$data/run.json" >>"$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
print(sys.argv[1], r["per_second"], r["server_cpu_us_per_request"])
PY
      echo "round $round audit $variant: $(tail -n 1 "$results")"
      kill "$server"; wait "$server" 2>/dev/null || true
    done
  done
  python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def median(variant, column):
    return statistics.median(float(r[column]) for r in rows if r[0] == variant)
on_rate, off_rate = median("on", 1), median("off", 1)
on_cpu, off_cpu = median("on", 2), median("off", 2)
print(f"audit on:  {on_rate:,.0f} grants/s, {on_cpu:.1f} us server CPU per grant (median)")
print(f"audit off: {off_rate:,.0f} grants/s, {off_cpu:.1f} us server CPU per grant (median)")
print(f"on/off: grants/s {on_rate / off_rate:.3f}, CPU per grant {on_cpu / off_cpu:.3f}")
PY
  exit 0
fi

start_server

echo "== token endpoint, closed loop, 64 connections (saturation)"
bench --requests "$requests" --concurrency 64
echo "== token endpoint, open loop at 5000/s"
bench --requests 25000 --rate 5000 --concurrency 128
echo "== userinfo, closed loop, 64 connections"
bench --endpoint userinfo --requests $((requests * 2)) --concurrency 64
echo "== introspection, closed loop, 64 connections"
bench --endpoint introspect --requests $((requests * 2)) --concurrency 64
kill "$server"; wait "$server" 2>/dev/null || true

echo "== start to ready (existing data directory), 5 runs"
for _ in 1 2 3 4 5; do
  t0=$(date +%s%N)
  start_server
  t1=$(date +%s%N)
  echo "ready in $(( (t1 - t0) / 1000000 )) ms"
  kill "$server"; wait "$server" 2>/dev/null || true
done

#!/usr/bin/env bash
# Reproduces the figures of docs/PERFORMANCE.md on this machine: builds the release
# binary, starts a server on a fresh SQLite data directory and drives it with
# `jwtgrant bench` (closed loop at saturation, open loop at 5,000/s, userinfo,
# introspection), then
# measures start-to-ready time. Usage: scripts/perf.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/.."
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

start_server
bench() { "$bin" --data-dir "$data" bench --server "http://127.0.0.1:$port" --server-pid "$server" "$@"; }

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

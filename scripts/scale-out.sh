#!/usr/bin/env bash
# Token throughput of several jwtgrant instances sharing one PostgreSQL database
# (and, with --redis, one Redis) against one instance on SQLite, on this machine.
#
# Each configuration gets a fresh store. Three `jwtgrant bench` processes run at
# once: against the single instance in the one-instance rows, one per instance in
# the three-instance rows (so the client side is the same in every row). Each bench
# gets its own integration, user and consent (registered with the admin commands
# before the load), mints its assertions (unique jti, RS256) before its clock
# starts, then drives its server closed-loop over keep-alive connections. The table gives the sum of the three
# benches' grants/s, and the rate the servers themselves counted (/metrics) while
# all three benches were sending (the load windows do not coincide exactly: each
# bench mints its assertions first).
#
# Everything (servers, PostgreSQL, Redis, the load) shares this machine's cores:
# the figures are what this machine does with all of it on board, not what a
# deployment with the database and the clients elsewhere would do.
#
# Usage: scripts/scale-out.sh [--redis] [--requests N] [--concurrency C]
#                             [--database-server postgres://user@host:port/db] [--bin PATH]
#   --requests N         measured requests per bench process (default 30000, plus 1000 warm-up)
#   --concurrency C      connections per bench process (default 32)
#   --database-server    where to CREATE DATABASE (default $JWTGRANT_TEST_DATABASE_URL,
#                        else postgres://postgres@127.0.0.1:5432/postgres); needs psql
#   --redis              also run three instances with --redis on a redis-server of the
#                        script's own (never the machine's shared Redis)
#   --bin PATH           the jwtgrant binary (default: cargo build --release, target/release/jwtgrant)
set -euo pipefail
cd "$(dirname "$0")/.."

requests=30000
concurrency=32
with_redis=0
server="${JWTGRANT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --redis) with_redis=1 ;;
    --requests) requests="$2"; shift ;;
    --concurrency) concurrency="$2"; shift ;;
    --database-server) server="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  cargo build --release -q -p jwtgrant
  bin="$PWD/target/release/jwtgrant"
fi
for tool in psql curl python3; do
  command -v "$tool" >/dev/null || { echo "scale-out.sh needs $tool" >&2; exit 2; }
done
if [ "$with_redis" = 1 ]; then
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || { echo "--redis needs redis-server and redis-cli" >&2; exit 2; }
fi

work="$(mktemp -d)"
pids=()
databases=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for db in "${databases[@]}"; do
    psql -q "$server" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# new_database: creates a fresh database; its URL goes to $db.
new_database() {
  local name="jg_scale_bench_$$_${#databases[@]}"
  psql -q "$server" -c "CREATE DATABASE $name" >/dev/null
  databases+=("$name")
  db="${server%/*}/$name"
}

# start_instance NAME PORT STORE-ARGS... -- SERVE-ARGS...: starts one server, waits
# until /readyz answers; its pid goes to $last_pid.
start_instance() {
  local name="$1" port="$2"; shift 2
  local store=()
  while [ "$1" != "--" ]; do store+=("$1"); shift; done
  shift
  NO_COLOR=1 "$bin" "${store[@]}" serve --listen "127.0.0.1:$port" "$@" 2>"$work/$name.log" &
  last_pid=$!
  pids+=("$last_pid")
  for _ in $(seq 600); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$last_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "instance $name on port $port did not become ready:" >&2
  cat "$work/$name.log" >&2
  exit 1
}

# sample_grants URL...: every 0.25 s, "nanoseconds total-grants-issued" over the URLs.
sample_grants() {
  while :; do
    local t total=0 n
    t=$(date +%s%N)
    for url in "$@"; do
      n=$(curl -fsS "$url/metrics" 2>/dev/null | awk '/^jwtgrant_grants_issued_total/ {s += $2} END {print s + 0}')
      total=$((total + ${n:-0}))
    done
    echo "$t $total"
    sleep 0.25
  done
}

# cpu_ticks PID...: user + system clock ticks the processes have used.
cpu_ticks() {
  local sum=0 fields stat
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a fields <<<"${stat##*) }"
    sum=$((sum + fields[11] + fields[12]))
  done
  echo "$sum"
}

# backing_ticks: CPU ticks of this machine's PostgreSQL processes (all of them: other
# users of a shared server count too) and of the script's redis-server.
backing_ticks() {
  # shellcheck disable=SC2046
  cpu_ticks $(pgrep -x postgres || true) ${redis_pid:-}
}

# peak_rss_kb PID...: the largest peak resident set among the processes.
peak_rss_kb() {
  local max=0 kb
  for pid in "$@"; do
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    [ "$kb" -gt "$max" ] && max=$kb
  done
  echo "$max"
}

# run_row LABEL STORE-ARGS... -- URL... : three benches at once over the URLs (round
# robin), with the servers' pids in $server_pids; writes $work/LABEL.*.
run_row() {
  local label="$1"; shift
  local store=()
  while [ "$1" != "--" ]; do store+=("$1"); shift; done
  shift
  local urls=("$@")
  # One integration (RS256 key, jti required, as the bench's own), user and consent
  # per bench, registered before any load: on SQLite, `consent grant` (a deferred
  # transaction that reads, then writes) racing the server's jti commits under load
  # fails with "database is locked", as a bench registering itself did.
  local subjects=() tag="${label//[^A-Za-z0-9]/_}"
  for i in 0 1 2; do
    local ik user
    ik=$("$bin" "${store[@]}" integration create --name "bench $i" --require-jti)
    "$bin" "${store[@]}" integration generate-key "$ik" --alg RS256 \
      --out "$work/$tag.key$i.pem" >/dev/null
    user=$("$bin" "${store[@]}" user create --email "bench$i-$ik@example.com" --name "Bench $i")
    "$bin" "${store[@]}" consent grant --user "$user" --integration "$ik" \
      --scope signature impersonation >/dev/null
    subjects+=("--integration-key $ik --user-id $user --key $work/$tag.key$i.pem")
  done
  sleep 1.5 # the registry poll (1 s) brings the registrations to every instance
  echo "== $label: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  local cpu_before backing_before
  cpu_before=$(cpu_ticks "${server_pids[@]}")
  backing_before=$(backing_ticks)
  sample_grants "${urls[@]}" >"$work/$label.samples" &
  local sampler=$!
  pids+=("$sampler")
  local benches=()
  for i in 0 1 2; do
    local url="${urls[$((i % ${#urls[@]}))]}"
    local pid="${server_pids[$((i % ${#server_pids[@]}))]}"
    (
      rc=0
      # shellcheck disable=SC2086
      "$bin" bench --server "$url" ${subjects[$i]} --requests "$requests" \
        --concurrency "$concurrency" --server-pid "$pid" --json \
        >"$work/$label.bench$i.json" 2>"$work/$label.bench$i.log" || rc=$?
      date +%s%N >"$work/$label.end$i"
      exit "$rc"
    ) &
    benches+=($!)
  done
  local failed=0
  for pid in "${benches[@]}"; do wait "$pid" || failed=1; done
  sleep 0.5
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  echo "$(( $(cpu_ticks "${server_pids[@]}") - cpu_before )) $(getconf CLK_TCK)" \
    "$(peak_rss_kb "${server_pids[@]}") $(( $(backing_ticks) - backing_before ))" >"$work/$label.servers"
  if [ "$failed" = 1 ]; then
    echo "a bench process failed:" >&2
    cat "$work/$label".bench*.log >&2
    exit 1
  fi
  echo "== $label: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  echo "$label" >>"$work/rows"
}

stop_instances() {
  for pid in "${server_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
echo "binary: $bin; per bench process: $requests measured requests (+1000 warm-up), $concurrency connections" >&2

# 1. One instance on SQLite.
data="$work/sqlite-data"
port=$(free_port)
start_instance sqlite "$port" --data-dir "$data" --
server_pids=("$last_pid")
run_row "1 x SQLite" --data-dir "$data" -- "http://127.0.0.1:$port"
stop_instances

# 2. One instance on PostgreSQL.
new_database
port=$(free_port)
start_instance pg1 "$port" --database "$db" --
server_pids=("$last_pid")
run_row "1 x PostgreSQL" --database "$db" -- "http://127.0.0.1:$port"
stop_instances

# three_instances LABEL [SERVE-ARGS...]: three instances on a fresh database, one
# public URL (the first's), each accepting the others' host:port as audience (the
# bench puts its server's host:port in aud).
three_instances() {
  local label="$1"; shift
  local db ports=() urls=()
  new_database
  for _ in 0 1 2; do ports+=("$(free_port)"); done
  local public="http://127.0.0.1:${ports[0]}"
  local accept="127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
  server_pids=()
  # The first alone (migrations, the signing key), then the other two.
  for i in 0 1 2; do
    start_instance "pg3-$i" "${ports[$i]}" --database "$db" -- \
      --public-url "$public" --accept-audience "$accept" "$@"
    server_pids+=("$last_pid")
    urls+=("http://127.0.0.1:${ports[$i]}")
  done
  run_row "$label" --database "$db" -- "${urls[@]}"
  stop_instances
}

# 3. Three instances sharing PostgreSQL.
three_instances "3 x PostgreSQL"

# 4. Three instances sharing PostgreSQL and Redis.
if [ "$with_redis" = 1 ]; then
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    >"$work/redis.log" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  until redis-cli -p "$redis_port" PING >/dev/null 2>&1; do sleep 0.05; done
  three_instances "3 x PostgreSQL + Redis" --redis "redis://127.0.0.1:$redis_port"
fi

python3 - "$work" <<'EOF'
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
rows = (work / "rows").read_text().split("\n")
print()
print(f"{'setup':<24} {'benches':>8} {'grants/s (sum)':>15} {'grants/s (all 3 sending)':>25} "
      f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>7} {'CPU us/grant':>13} {'PG+Redis CPU':>14} {'peak RSS MB':>12}")
for label in filter(None, rows):
    benches = [json.loads((work / f"{label}.bench{i}.json").read_text()) for i in range(3)]
    total = sum(b["per_second"] for b in benches)
    errors = sum(sum(b["errors"].values()) for b in benches)
    p50 = max(b["latency_ms"]["p50"] for b in benches)
    p99 = max(b["latency_ms"]["p99"] for b in benches)
    ticks, clk_tck, rss_kb, backing = map(int, (work / f"{label}.servers").read_text().split())
    # The servers' own count while all three benches were sending: each bench's
    # load window ends when it exits and lasted its "seconds".
    samples = [tuple(map(int, l.split())) for l in (work / f"{label}.samples").read_text().split("\n") if l.strip()]
    ends = [int((work / f"{label}.end{i}").read_text()) for i in range(3)]
    starts = [end - b["seconds"] * 1e9 for end, b in zip(ends, benches)]
    inside = [s for s in samples if max(starts) <= s[0] <= min(ends)]
    servers = None
    if len(inside) >= 2 and inside[-1][0] - inside[0][0] >= 1e9:
        servers = (inside[-1][1] - inside[0][1]) / ((inside[-1][0] - inside[0][0]) / 1e9)
        overlap = (inside[-1][0] - inside[0][0]) / 1e9
    grants = samples[-1][1] - samples[0][1] if samples else 0
    cpu = ticks / clk_tck * 1e6 / grants if grants else 0.0
    backing_cpu = backing / clk_tck * 1e6 / grants if grants else 0.0
    servers_text = f"{servers:,.0f} over {overlap:.1f} s" if servers else "- (no overlap)"
    print(f"{label:<24} {'3 x ' + str(benches[0]['concurrency']):>8} {total:>15,.0f} {servers_text:>25} "
          f"{p50:>7.2f} {p99:>7.2f} {errors:>7} {cpu:>13.0f} {backing_cpu:>14.0f} {rss_kb / 1024:>12.1f}")
print()
print("grants/s (sum): the three bench processes' rates added; grants/s (all 3 sending): grants")
print("the servers counted (/metrics) while all three benches were sending; p50/p99: the worst bench's;")
print("CPU us/grant: the jwtgrant servers' CPU time over the grants they issued; PG+Redis CPU:")
print("the same for every local postgres process and the script's redis-server (us/grant);")
print("peak RSS: the largest jwtgrant server process.")
EOF
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Issue 12's benchmark: a grant from a trusted issuer with cached keys against a
# registered integration's grant, in the same run, on this machine.
#
# Builds the release binary, registers on a fresh SQLite data directory (before the
# server starts, so no admin write races the load):
#   - an integration allowed application tokens (jti required) with a generated
#     RS256 key: side A sends its own assertions (no `sub`, a unique `jti`);
#   - a second RS256 key pair, the "issuer"'s, whose JWKS goes to a file, and the
#     trusted issuer https://token.actions.githubusercontent.com with that file
#     (--jwks-file: keys parsed once and kept, the "cached keys" case), bound to the
#     integration, a workload subject and GitHub's condition on the owner and the
#     branch: side B sends GitHub Actions-shaped tokens (`jwtgrant bench --issuer`);
#   - with --jwks-uri, also a second issuer whose keys come from a JWKS URL served by
#     `python3 -m http.server` on 127.0.0.1 (fetched once, then from the server's
#     cache): side C;
#   - with --size-matched, also side P: the integration's assertions with the GitHub
#     claims added (`jwtgrant bench --github-claims`), as long as side B's tokens, to
#     tell the cost of the trusted-issuer path from the cost of a longer token.
# Then starts `jwtgrant serve` on 127.0.0.1 only and runs `jwtgrant bench`
# alternately A, [P,] B[, C], A, [P,] B[, C], ... with the same requests and
# concurrency and --server-pid, and prints every run, the medians, the ratios of the
# medians to A's and the median of each round's ratio to that round's A.
# Both sides ask for the scope `signature` and get an application token of the same
# integration, signed the same way (the server's ES256 key); the rate limits are off
# (0) so that neither side is held back by them at saturation.
#
# With --callgrind N the server runs under valgrind's callgrind instead, and each
# side sends 200 grants to warm up, then N grants counted (8 connections): the
# instructions the server executes per grant, which do not depend on the machine's
# load (user space only: the kernel's share is not counted), and the functions whose
# count differs most from A's (and from P's).
#
# Usage: scripts/bench-federation.sh [--requests N] [--concurrency C] [--rounds R]
#                                    [--jwks-uri] [--size-matched] [--callgrind N]
#                                    [--bin PATH]
#   --requests N     measured requests per bench run (default 40000, plus 1000 warm-up)
#   --concurrency C  keep-alive connections per run (default 64)
#   --rounds R       how many times each side runs (default 2: A B A B)
#   --jwks-uri       also side C: the issuer's keys by URL, from a loopback server
#   --size-matched   also side P: the integration's assertions with the GitHub claims
#   --callgrind N    count instructions per grant over N grants per side (needs valgrind)
#   --bin PATH       the jwtgrant binary (default: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."

requests=40000
concurrency=64
rounds=2
with_uri=0
with_p=0
callgrind=0
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests="$2"; shift ;;
    --concurrency) concurrency="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --jwks-uri) with_uri=1 ;;
    --size-matched) with_p=1 ;;
    --callgrind) callgrind="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    -h|--help) sed -n '2,43p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  cargo build --release -q -p jwtgrant
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/jwtgrant"
fi
tools=(curl python3)
[ "$callgrind" != 0 ] && tools+=(valgrind callgrind_control)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "bench-federation.sh needs $tool" >&2; exit 2; }
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

github=https://token.actions.githubusercontent.com
by_url=https://issuer-by-url.bench.example
audience=https://github.com/octo-org
store=(--data-dir "$work/data")
jg() { NO_COLOR=1 "$bin" "${store[@]}" "$@"; }

# Side A: the integration and its own key.
ik=$(jg integration create --name "federation bench" --allow-application-tokens --require-jti)
jg integration generate-key "$ik" --alg RS256 --out "$work/integration.pem" >/dev/null

# Side B: the issuer's key pair and its JWKS as a file.
"$bin" keygen --alg RS256 --out "$work/issuer" >/dev/null
mkdir "$work/www"
python3 - "$work/issuer.jwk.json" "$work/www/jwks.json" <<'EOF'
import json, sys
jwk = json.load(open(sys.argv[1]))
json.dump({"keys": [jwk]}, open(sys.argv[2], "w"))
EOF
kid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["kid"])' "$work/issuer.jwk.json")
policy=(--integration "$ik" --audience "$audience"
  --subject workload --subject-expr '"repo:" + assertion.repository'
  --condition 'assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main"')
jg issuer add --issuer "$github" --jwks-file "$work/www/jwks.json" "${policy[@]}" >/dev/null

serve_flags=(--rate-limit-per-client 0 --rate-limit-per-integration 0)
if [ "$with_uri" = 1 ]; then
  # Side C: the same key, by URL, from a static file server on loopback only.
  jwks_port=$(free_port)
  python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$jwks_port" \
    </dev/null >"$work/jwks-server.log" 2>&1 &
  pids+=($!)
  until curl -fsS "http://127.0.0.1:$jwks_port/jwks.json" >/dev/null 2>&1; do sleep 0.05; done
  jg issuer add --issuer "$by_url" --jwks-uri "http://127.0.0.1:$jwks_port/jwks.json" \
    --allow-insecure-issuer-urls "${policy[@]}" >/dev/null
  serve_flags+=(--allow-insecure-issuer-urls)
fi

port=$(free_port)
# Not through jg (a function, which `&` would run in a subshell): $! must be the
# server's own pid, whose CPU time the bench reads.
wrap=()
if [ "$callgrind" != 0 ]; then
  wrap=(valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$work/callgrind.out")
fi
NO_COLOR=1 "${wrap[@]}" "$bin" "${store[@]}" serve --listen "127.0.0.1:$port" "${serve_flags[@]}" \
  >/dev/null 2>"$work/server.log" &
server=$!
pids+=("$server")
for _ in $(seq 1200); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.05
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

common=(--server "http://127.0.0.1:$port" --server-pid "$server" --scope signature --json)
side_args() {
  case "$1" in
    A) echo "--integration-key $ik --key $work/integration.pem" ;;
    P) echo "--integration-key $ik --key $work/integration.pem --github-claims" ;;
    B) echo "--issuer $github --issuer-key $work/issuer.pem --issuer-kid=$kid --aud $audience" ;;
    C) echo "--issuer $by_url --issuer-key $work/issuer.pem --issuer-kid=$kid --aud $audience" ;;
  esac
}
sides=(A)
[ "$with_p" = 1 ] && sides+=(P)
sides+=(B)
[ "$with_uri" = 1 ] && sides+=(C)

if [ "$callgrind" != 0 ]; then
  for side in "${sides[@]}"; do
    # shellcheck disable=SC2046
    "$bin" bench "${common[@]}" $(side_args "$side") --requests 200 --warmup 0 --concurrency 8 \
      >/dev/null 2>"$work/$side.warm.log" || { cat "$work/$side.warm.log" >&2; exit 1; }
  done
  n=0
  for side in "${sides[@]}"; do
    echo "== side $side under callgrind" >&2
    callgrind_control -z "$server" >/dev/null 2>&1
    # shellcheck disable=SC2046
    "$bin" bench "${common[@]}" $(side_args "$side") --requests "$callgrind" --warmup 0 \
      --concurrency 8 >"$work/$side.cg.json" 2>"$work/$side.cg.log" \
      || { cat "$work/$side.cg.log" >&2; exit 1; }
    callgrind_control -d "$side" "$server" >/dev/null 2>&1
    n=$((n + 1))
    echo "$side $work/callgrind.out.$n" >>"$work/dumps"
  done
  python3 - "$work" "$callgrind" <<'EOF'
import json, pathlib, re, sys
work, grants = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def self_cost(path):
    """Instructions by function, each counted where it is executed (not its callees)."""
    names, cost, fn, call = {}, {}, None, False
    for line in open(path):
        if line.startswith(("fn=", "cfn=")):
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if m.group(2) is not None:
                names[m.group(1)] = m.group(2)
            if line.startswith("fn="):
                fn, call = names[m.group(1)], False
        elif line.startswith("calls="):
            call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            if len(parts) >= 2 and not call:
                cost[fn] = cost.get(fn, 0) + int(parts[1])
            call = False
    return {k: v / grants for k, v in cost.items()}

sides = {}
for line in (work / "dumps").read_text().strip().split("\n"):
    side, path = line.split()
    report = json.loads((work / f"{side}.cg.json").read_text())
    if report["errors"]:
        sys.exit(f"side {side} had errors: {report['errors']}")
    sides[side] = self_cost(path)
total = {side: sum(c.values()) for side, c in sides.items()}
print()
for side, t in total.items():
    print(f"side {side}: {t:,.0f} instructions per grant ({t / total['A']:.3f}x A's)")
for base in ("A", "P"):
    for other in ("B", "C"):
        if base in sides and other in sides:
            a, b = sides[base], sides[other]
            print(f"\nfunctions whose count differs most, {other} - {base} (instructions per grant):")
            for k in sorted(set(a) | set(b), key=lambda k: -abs(b.get(k, 0) - a.get(k, 0)))[:25]:
                print(f"{a.get(k, 0):9,.0f} {b.get(k, 0):9,.0f} {b.get(k, 0) - a.get(k, 0):+9,.0f}  {k[:110]}")
EOF
  exit 0
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
echo "binary: $bin; per run: $requests measured requests (+1000 warm-up), $concurrency connections" >&2
for round in $(seq "$rounds"); do
  for side in "${sides[@]}"; do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "== round $round, side $side (load average $load)" >&2
    # shellcheck disable=SC2046
    "$bin" bench "${common[@]}" $(side_args "$side") --requests "$requests" \
      --concurrency "$concurrency" >"$work/$side.$round.json" 2>"$work/$side.$round.log" \
      || { cat "$work/$side.$round.log" >&2; exit 1; }
    echo "$side $round $load" >>"$work/runs"
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$work" <<'EOF'
import json, pathlib, statistics, sys
work = pathlib.Path(sys.argv[1])
names = {"A": "integration", "P": "integration, GitHub-sized", "B": "issuer, JWKS file",
         "C": "issuer, JWKS URL"}
runs = []
for line in (work / "runs").read_text().split("\n"):
    if line.strip():
        side, round_, *load = line.split()
        runs.append((side, round_, " ".join(load), json.loads((work / f"{side}.{round_}.json").read_text())))
print()
print(f"{'side':<29} {'round':>5} {'grants/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/grant':>13} "
      f"{'errors':>7} {'load before':>16}")
failed = False
for side, round_, load, r in runs:
    errors = sum(r["errors"].values())
    failed |= errors > 0
    print(f"{side + ' ' + names[side]:<29} {round_:>5} {r['per_second']:>9,.0f} {r['latency_ms']['p50']:>7.2f} "
          f"{r['latency_ms']['p99']:>7.2f} {r['server_cpu_us_per_request']:>13.1f} {errors:>7} {load:>16}")
    for kind, count in r["errors"].items():
        print(f"{'':<29} errors {kind}: {count}")
print()
median = {}
for side in names:
    of_side = [r for s, _, _, r in runs if s == side]
    if of_side:
        median[side] = (statistics.median(r["per_second"] for r in of_side),
                        statistics.median(r["server_cpu_us_per_request"] for r in of_side))
        print(f"median {side + ' ' + names[side]:<29} {median[side][0]:>9,.0f} grants/s "
              f"{median[side][1]:>7.1f} us of server CPU per grant")
crypto = statistics.median(r["crypto_only_us"] for _, _, _, r in runs)
print(f"crypto-only cost (the bench's own measure, median): {crypto:.1f} us")
by_round = {(s, n): r for s, n, _, r in runs}
for side in ("P", "B", "C"):
    if side in median and median["A"][1] > 0:
        cpu = median[side][1] / median["A"][1]
        rate = median["A"][0] / median[side][0]
        paired = [by_round[(side, n)]["server_cpu_us_per_request"] / by_round[("A", n)]["server_cpu_us_per_request"]
                  for s, n, _, _ in runs if s == side and ("A", n) in by_round]
        print(f"{side}/A: server CPU per grant {cpu:.3f}x, time per grant (A's grants/s over "
              f"{side}'s) {rate:.3f}x; per round (CPU) {' '.join(f'{x:.2f}' for x in paired)}, "
              f"median {statistics.median(paired):.3f}x"
              + (f"; target <= 1.2x: {'met' if cpu <= 1.2 else 'NOT met'}" if side != "P" else ""))
sys.exit(1 if failed else 0)
EOF

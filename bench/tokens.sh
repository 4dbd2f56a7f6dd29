#!/usr/bin/env bash
# What reading usage and keeping limits cost: CPU time per proxied call, in one run, of
#   before   the gateway built without any of it (BEFORE_REV, or the binary given as before=...),
#   off      this gateway, its subscription without limits (usage is still read from each answer
#            and each call's prompt counted: that is not switchable),
#   on       this gateway, its subscription with a token and a request limit per minute and a
#            daily budget (high enough that nothing is refused), headroom checks on,
# all in front of the same simulated backend, measured in turn, $ROUNDS rounds; POST chat
# completions (non-streaming, with max_tokens) at $CONNECTIONS connections with wrk. The goal
# of the tokens issue: on costs at most 15% more CPU per call than before.
#
#   bench/tokens.sh                                  # builds BEFORE_REV in a scratch worktree
#   bench/tokens.sh before=/path/to/old/aoai-gateway # or use that binary
#   ROUNDS=5 DURATION=10 bench/tokens.sh
#
# Installs wrk with apt-get where missing. Everything binds 127.0.0.1 and stops at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-3}"
# The last commit before usage, limits and tiers.
BEFORE_REV="${BEFORE_REV:-0edfbb5}"

source bench/lib.sh
before_arg "$@"
need wrk

WORK="$(mktemp -d)"
pids=()
trap stop_all EXIT

cargo build --release --quiet
NOW=target/release/aoai-gateway
if [ -z "$BEFORE" ]; then
  build_revision "$BEFORE_REV" # the gateway before usage and limits
  BEFORE="$BUILT"
fi


export SIMULATOR_API_KEY="bench-backend-key" BENCH_BACKEND_KEY="bench-backend-key" BENCH_CLIENT_KEY="bench-client-key"
SIM_PORT=$(free_port)
RUST_LOG=warn "$NOW" simulate --listen "127.0.0.1:$SIM_PORT" --workers 1 --chunk-delay-ms 0 & pids+=($!)

BACKEND="http://127.0.0.1:$SIM_PORT"
start_gateway before "$BEFORE" "" "" "$BACKEND"
start_gateway off "$NOW" "[failover]
skip_low_headroom = false" "" "$BACKEND"
start_gateway on "$NOW" "" "$HIGH_LIMITS" "$BACKEND"
for p in "$SIM_PORT" "${PORT[@]}"; do wait_port "$p"; done

chat_lua "$WORK/chat.lua"
for name in before off on; do check "${PORT[$name]}" "$BENCH_CLIENT_KEY"; done

echo "CPU per proxied call: POST chat/completions, $ROUNDS rounds x ${DURATION}s, $CONNECTIONS connections, one worker each, $(nproc) cores"
measure_rounds before off on
python3 - "$WORK/results" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, name, cpu = line.split()
    runs[rnd][name] = float(cpu)
med = lambda f: statistics.median(f(r) for r in runs.values())
print()
print(f"medians: before {med(lambda r: r['before']):.2f} us, off {med(lambda r: r['off']):.2f} us, on {med(lambda r: r['on']):.2f} us per call")
print(f"  reading usage and counting prompts (off vs before): {100 * (med(lambda r: r['off'] / r['before']) - 1):+.1f}%")
print(f"  limits and headroom (on vs off):                     {100 * (med(lambda r: r['on'] / r['off']) - 1):+.1f}%")
print(f"  all of it (on vs before; goal at most +15%):          {100 * (med(lambda r: r['on'] / r['before']) - 1):+.1f}%")
PY

#!/usr/bin/env bash
# What sharing state through Redis costs a call, in one run on loopback: the same gateway
#   local    with in-process state,
#   shared   with [state] redis_url (every call one round trip: begin.lua reserves its tokens
#            and takes its rotation's turn),
# both with two backends (so every call takes a turn) and a subscription with token and
# request limits and a daily budget (high enough that nothing is refused), in front of the
# same simulated backend. Measured in turn, $ROUNDS rounds, with wrk: latency at concurrency 1
# and throughput at $CONNECTIONS connections. The goals of the shared-state issue: added p50 at
# most 100 us, throughput at least 0.5x in-process.
#
#   bench/redis.sh                       # its own redis-server on a free port
#   REDIS_URL=redis://10.0.0.5:6379 bench/redis.sh
#   ROUNDS=5 DURATION=10 bench/redis.sh
#
# Installs wrk and redis-server with apt-get where missing. Everything binds 127.0.0.1 and
# stops at exit; a given REDIS_URL gets keys under a prefix of this run's, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-3}"
source bench/lib.sh
need wrk redis-server

WORK="$(mktemp -d)"
PREFIX="aoai-bench-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${REDIS_GIVEN:-}" ]; then
    redis-cli -u "$REDIS_URL" --scan --pattern "{$PREFIX}*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet
BIN=target/release/aoai-gateway
export SIMULATOR_API_KEY="bench-backend-key" BENCH_BACKEND_KEY="bench-backend-key" BENCH_CLIENT_KEY="bench-client-key"

REDIS_PID=""
if [ -n "${REDIS_URL:-}" ]; then
  REDIS_GIVEN=1
else
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 & pids+=($!)
  REDIS_PID=$!
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  wait_port "$REDIS_PORT"
fi

SIM_PORT=$(free_port)
RUST_LOG=warn "$BIN" simulate --listen "127.0.0.1:$SIM_PORT" --workers 1 --chunk-delay-ms 0 & pids+=($!)

# Two backends, so that every call takes a rotation's turn.
gateway() { start_gateway "$1" "$BIN" "$2" "$HIGH_LIMITS" "http://127.0.0.1:$SIM_PORT" "http://127.0.0.1:$SIM_PORT"; }
gateway local ""
gateway shared "[state]
redis_url = \"$REDIS_URL\"
key_prefix = \"$PREFIX\""
for p in "$SIM_PORT" "${PORT[@]}"; do wait_port "$p"; done
# Shared state is up once the gateway says so (it connects in the background).
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:${PORT[shared]}/metrics" | grep -q '^aoai_gateway_state_store_up 1' && break
  sleep 0.05
done
curl -s "http://127.0.0.1:${PORT[shared]}/metrics" | grep -q '^aoai_gateway_state_store_up 1' || { echo "shared state did not come up" >&2; exit 1; }

chat_lua "$WORK/chat.lua"
for name in local shared; do check "${PORT[$name]}" "$BENCH_CLIENT_KEY"; done

echo "shared state cost: POST chat/completions, $ROUNDS rounds x ${DURATION}s per measurement, one gateway worker each, $(nproc) cores"
echo "redis: $( [ -n "$REDIS_PID" ] && echo "its own redis-server on loopback" || echo "REDIS_URL" )"
printf "%-6s %-7s %-6s %12s %10s %10s %14s %12s\n" round state conns "requests/s" "p50 ms" "p99 ms" "CPU us/call" "redis us/call"
: > "$WORK/results"
for round in $(seq "$ROUNDS"); do
  for conns in 1 "$CONNECTIONS"; do
    for name in local shared; do
      redis_before=0; [ -n "$REDIS_PID" ] && redis_before=$(cpu_ticks "$REDIS_PID")
      read -r rps p50 p99 cpu < <(measure "${PORT[$name]}" "$BENCH_CLIENT_KEY" "$conns" "${PID[$name]}")
      redis_cpu="-"
      if [ -n "$REDIS_PID" ]; then
        redis_cpu=$(awk -v used="$(( $(cpu_ticks "$REDIS_PID") - redis_before ))" -v tick="$TICK" '
          /requests in/ { total = $1 } END { printf "%.1f", used / tick * 1e6 / total }' "$WORK/out")
      fi
      echo "$round $name $conns $rps $p50 $p99 $cpu" >> "$WORK/results"
      printf "%-6s %-7s %-6s %12s %10s %10s %14s %12s\n" "$round" "$name" "$conns" "$rps" "$p50" "$p99" "$cpu" "$redis_cpu"
    done
  done
done

python3 - "$WORK/results" "$CONNECTIONS" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, name, conns, rps, p50, p99, cpu = line.split()
    runs[(rnd, conns)][name] = (float(rps), float(p50), float(p99), float(cpu))
c = sys.argv[2]
def med(conns, f):
    return statistics.median(f(m) for (_, cc), m in runs.items() if cc == conns)
print()
print("medians over rounds (each difference or ratio taken within a round)")
added = med('1', lambda m: m['shared'][1] - m['local'][1]) * 1000
added99 = med('1', lambda m: m['shared'][2] - m['local'][2]) * 1000
ratio = med(c, lambda m: m['shared'][0] / m['local'][0])
cpu = med(c, lambda m: m['shared'][3] - m['local'][3])
print(f"  concurrency 1: p50 local {med('1', lambda m: m['local'][1]) * 1000:.0f} us, shared {med('1', lambda m: m['shared'][1]) * 1000:.0f} us")
print(f"  added latency with shared state at concurrency 1: p50 {added:+.0f} us (goal at most +100), p99 {added99:+.0f} us")
print(f"  throughput at {c} connections: local {med(c, lambda m: m['local'][0]):.0f}/s, shared {med(c, lambda m: m['shared'][0]):.0f}/s: {ratio:.2f}x (goal at least 0.5x)")
print(f"  gateway CPU per call at {c} connections: {cpu:+.1f} us with shared state")
PY

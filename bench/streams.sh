#!/usr/bin/env bash
# What open streams cost the gateway, in one run on loopback, against a slow Azure-like
# backend (bench/streams.py: a chat completion stream of one chunk a second):
#   memory    resident memory idle (after one call), then with $STREAMS streams held open at
#             once; the performance issue's goals: idle at most 20 MB, each stream at most
#             10 KiB beyond idle;
#   latency   for chunks written every 20 ms on $LATENCY_STREAMS streams, the time from the
#             backend writing a chunk to its reaching the client, direct and through the
#             gateway; goal: the gateway adds at most 0.3 ms at p99.
# The gateway runs with one worker, usage accounting and a subscription with limits.
#
#   bench/streams.sh
#   STREAMS=2000 bench/streams.sh
#
# Binds 127.0.0.1 only; stops what it started at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMS="${STREAMS:-1000}"
LATENCY_STREAMS="${LATENCY_STREAMS:-20}"
source bench/lib.sh
# Each stream holds a socket to the client and one to the backend.
ulimit -n $(( STREAMS * 3 + 1024 )) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release --quiet
BIN=target/release/aoai-gateway
export BENCH_BACKEND_KEY="bench-backend-key" BENCH_CLIENT_KEY="bench-client-key"
PATH_Q="/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# gateway <name> <backend port>
gateway() { start_gateway "$1" "$BIN" "" "$HIGH_LIMITS" "http://127.0.0.1:$2"; }

SLOW=$(free_port); FAST=$(free_port)
python3 bench/streams.py upstream "$SLOW" 1000 120 & pids+=($!)
python3 bench/streams.py upstream "$FAST" 20 100000 & pids+=($!)
gateway memory "$SLOW"; gateway latency "$FAST"
for p in "$SLOW" "$FAST" "${PORT[memory]}" "${PORT[latency]}"; do wait_port "$p"; done

echo "open streams: one gateway worker, $(nproc) cores"
python3 bench/streams.py hold "${PORT[memory]}" "$PATH_Q" "$BENCH_CLIENT_KEY" 1 1 >/dev/null
sleep 1
idle=$(rss_kb "${PID[memory]}")
python3 bench/streams.py hold "${PORT[memory]}" "$PATH_Q" "$BENCH_CLIENT_KEY" "$STREAMS" 8 > "$WORK/hold" &
holder=$!
peak=$idle
for _ in $(seq 16); do
  sleep 0.5
  now=$(rss_kb "${PID[memory]}"); [ "$now" -gt "$peak" ] && peak=$now
done
wait "$holder"
cat "$WORK/hold"
awk -v idle="$idle" -v peak="$peak" -v n="$STREAMS" 'BEGIN {
  printf "memory: idle %.1f MB (goal at most 20), with %d streams %.1f MB: %.1f KiB a stream (goal at most 10)\n",
    idle / 1024, n, peak / 1024, (peak - idle) / n }'

read -r n_direct p50_direct p99_direct < <(python3 bench/streams.py latency "$FAST" "$PATH_Q" "-" "$LATENCY_STREAMS" 5)
read -r n_gw p50_gw p99_gw < <(python3 bench/streams.py latency "${PORT[latency]}" "$PATH_Q" "$BENCH_CLIENT_KEY" "$LATENCY_STREAMS" 5)
awk -v a="$p50_direct" -v b="$p99_direct" -v c="$p50_gw" -v d="$p99_gw" -v n="$n_gw" -v s="$LATENCY_STREAMS" 'BEGIN {
  printf "chunk latency, backend write to client read, %d streams (%d chunks): direct p50 %.0f us, p99 %.0f us; through the gateway p50 %.0f us, p99 %.0f us\n", s, n, a, b, c, d
  printf "  added by the gateway: p50 +%.0f us, p99 +%.0f us (goal at most +300 us at p99)\n", c - a, d - b }'

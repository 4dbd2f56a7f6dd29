#!/usr/bin/env bash
# Large request bodies: what they cost the gateway and whether they hold up other calls.
#
# A 31 MB chat body of ~480k short messages, invalid in its last message (so the gateway reads
# it all, then refuses it: no backend is needed), sent to gateways built from one or more
# binaries, in one run so they can be compared:
#   cpu_ms       the gateway's CPU time for one such body (utime+stime from /proc)
#   healthz_ms   the slowest /healthz answer while 4 such bodies are in flight (probed every
#                20 ms), against idle_ms, the slowest with nothing else going on
#   peak_mb      peak resident memory with 8 such bodies sent at once (VmHWM), against the
#                goal of 8 x the body limit + 100 MB
#   after_mb     resident memory 3 s after the burst, against idle_mb before it
# Each gateway has 2 workers and a 32 MiB body limit.
#
#   bench/large_bodies.sh                                  # target/release/aoai-gateway
#   bench/large_bodies.sh old=/tmp/old/aoai-gateway new=target/release/aoai-gateway
#
# Binds 127.0.0.1 only; stops what it started at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
[ $# -gt 0 ] || set -- "gateway=target/release/aoai-gateway"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$work/body.json" <<'EOF'
import json, sys
message = {"role": "user", "content": "hello world, this is one of many chat messages"}
count = 31_000_000 // len(json.dumps(message))
body = json.dumps({"messages": [message] * count + [{"role": "robot", "content": "x"}]})
open(sys.argv[1], "w").write(body)
EOF
body_mb=$(( $(stat -c %s "$work/body.json") / 1000000 ))

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
post_body() {
  curl -s -o /dev/null -w '%{http_code}\n' -H 'api-key: bench-client-key' \
    -H 'content-type: application/json' --data-binary "@$work/body.json" \
    "http://127.0.0.1:$1/openai/deployments/gpt/chat/completions?api-version=2024-10-21"
}
slowest_healthz() {  # port, seconds
  local end=$(( $(date +%s%N) + $2 * 1000000000 )) worst=0 t
  while [ "$(date +%s%N)" -lt "$end" ]; do
    t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$1/healthz")
    worst=$(python3 -c "print(max($worst, $t))")
    sleep 0.02
  done
  python3 -c "print(round($worst * 1000))"
}

ticks=$(getconf CLK_TCK)
printf '%-10s %8s %9s %11s %8s %8s %8s %8s\n' build cpu_ms idle_ms healthz_ms idle_mb peak_mb goal_mb after_mb
for spec in "$@"; do
  name="${spec%%=*}"; binary="${spec#*=}"
  port=$(free_port)
  cat > "$work/$name.toml" <<EOF
listen = "127.0.0.1:$port"
workers = 2
[limits]
max_body_bytes = 33554432
[[backends]]
name = "unused"
endpoint = "http://127.0.0.1:9"
api_key_env = "BENCH_BACKEND_KEY"
[[subscriptions]]
name = "bench"
key_env = "BENCH_CLIENT_KEY"
EOF
  BENCH_BACKEND_KEY=unused BENCH_CLIENT_KEY=bench-client-key RUST_LOG=warn \
    "$binary" serve --config "$work/$name.toml" >/dev/null 2>&1 &
  pid=$!; pids+=("$pid")
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.1; done
  idle_kb=$(rss_kb "$pid")
  idle_ms=$(slowest_healthz "$port" 2)

  before=$(cpu_ticks "$pid"); post_body "$port" >/dev/null; after=$(cpu_ticks "$pid")
  cpu_ms=$(( (after - before) * 1000 / ticks ))

  for _ in 1 2 3 4; do post_body "$port" >/dev/null & done
  sleep 0.3
  healthz_ms=$(slowest_healthz "$port" 2)
  wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true

  for _ in $(seq 8); do post_body "$port" >/dev/null & done
  wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
  peak_kb=$(hwm_kb "$pid")
  sleep 3
  after_kb=$(rss_kb "$pid")
  printf '%-10s %8d %9d %11d %8d %8d %8d %8d\n' "$name" "$cpu_ms" "$idle_ms" "$healthz_ms" \
    $((idle_kb / 1024)) $((peak_kb / 1024)) $((8 * 32 + 100)) $((after_kb / 1024))
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
echo "(one body: ${body_mb} MB; goal: peak <= 8 x 32 MiB + 100 MB, after within 100 MB of idle)"

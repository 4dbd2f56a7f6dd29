#!/usr/bin/env bash
# What prompt-cache placement buys, in one run on loopback: three simulated resources, each with
# its own prompt cache (1,024 tokens on, steps of 128, a few minutes' life), behind
#   rr    the gateway rotating over the three (balancing.policy = "round_robin"),
#   pc    the same with balancing.policy = "prompt_cache",
#   one   the gateway in front of one of them alone: the cached share to aim for.
# $APPS applications (30), each with its own system prompt of about 1,500 tokens, make $CALLS
# calls (3,000) drawn Zipf-like, over $CONNECTIONS connections (96), paced at $RATE calls a
# second (500), each answered after $LATENCY_MS (100 ms), so that about 50 are in flight, as
# calls are on Azure, where they take seconds; each gateway and round
# gets deployments of its own, so no run finds another's prompts cached. Reported per round:
# the share of prompt tokens served from the cache, the busiest backend's calls against the
# mean, and the gateway's CPU per call. Goals: pc's cached share at least 90% of one's, busiest
# over mean at most 1.25, CPU per call within 3% of rr's.
#
#   bench/cache.sh
#   ROUNDS=5 CALLS=5000 CACHE_MS=500 bench/cache.sh
#   INSTRUCTIONS=1 bench/cache.sh   # also what placing a call costs, in instructions (callgrind,
#                                   # which noise does not move): rr and pc in front of a static
#                                   # nginx, for calls with a 1,500-token system prompt
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
CALLS="${CALLS:-3000}"
APPS="${APPS:-30}"
CONNECTIONS="${CONNECTIONS:-96}"
CACHE_MS="${CACHE_MS:-200}"
RATE="${RATE:-500}"
LATENCY_MS="${LATENCY_MS:-100}"
source bench/lib.sh

WORK="$(mktemp -d)"
pids=()
trap stop_all EXIT

cargo build --release --quiet
BIN=target/release/aoai-gateway
export SIMULATOR_API_KEY="bench-backend-key" BENCH_BACKEND_KEY="bench-backend-key" BENCH_CLIENT_KEY="bench-client-key"

SIMS=()
for region in "East US" "West US" "Sweden Central"; do
  port=$(free_port)
  RUST_LOG=warn "$BIN" simulate --listen "127.0.0.1:$port" --region "$region" --workers 1 --chunk-delay-ms 0 --prompt-cache-ms "$CACHE_MS" --latency-ms "$LATENCY_MS" & pids+=($!)
  wait_port "$port"
  SIMS+=("http://127.0.0.1:$port")
done

start_gateway rr "$BIN" '[balancing]
policy = "round_robin"' "" "${SIMS[@]}"
start_gateway pc "$BIN" '[balancing]
policy = "prompt_cache"' "" "${SIMS[@]}"
start_gateway one "$BIN" "" "" "${SIMS[0]}"
for name in rr pc one; do wait_port "${PORT[$name]}"; check "${PORT[$name]}" "$BENCH_CLIENT_KEY"; done

printf "%-6s %-5s %13s %15s %12s %8s\n" round gateway "cached share" "busiest/mean" "CPU us/call" "calls/s"
: > "$WORK/results"
for round in $(seq "$ROUNDS"); do
  for name in rr pc one; do
    backends=3; [ "$name" = one ] && backends=1
    path="/openai/deployments/bench-$name-$round/chat/completions?api-version=2024-10-21"
    read -r share busiest cpu rate < <(BACKENDS=$backends python3 bench/cache.py "${PORT[$name]}" "$path" "$BENCH_CLIENT_KEY" "$APPS" "$CALLS" "$CONNECTIONS" "${PID[$name]}" "$RATE")
    echo "$round $name $share $busiest $cpu" >> "$WORK/results"
    printf "%-6s %-7s %11.1f%% %15s %12s %8s\n" "$round" "$name" "$(awk -v s="$share" 'BEGIN { print s * 100 }')" "$busiest" "$cpu" "$rate"
  done
done

# Medians over the rounds: pc's cached share against one's, its balance, its CPU against rr's.
awk '
  { share[$1, $2] = $3; busiest[$1, $2] = $4; cpu[$1, $2] = $5; rounds = $1 }
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    for (r = 1; r <= rounds; r++) {
      of_one[r] = share[r, "pc"] / share[r, "one"]; rr_of_one[r] = share[r, "rr"] / share[r, "one"]
      bal[r] = busiest[r, "pc"]; cost[r] = cpu[r, "pc"] / cpu[r, "rr"]
    }
    printf "\nmedians over %d rounds:\n", rounds
    printf "  cached share, prompt_cache against one backend: %.1f%% (round-robin: %.1f%%)\n", median(of_one, rounds) * 100, median(rr_of_one, rounds) * 100
    printf "  busiest backend over mean, prompt_cache: %.3f\n", median(bal, rounds)
    printf "  CPU per call, prompt_cache against round-robin: %+.1f%%\n", (median(cost, rounds) - 1) * 100
  }' "$WORK/results"

[ "${INSTRUCTIONS:-}" = 1 ] || exit 0

# Instructions per call, rr against pc: $FEW and $MANY calls under callgrind, the difference
# divided by the difference in calls (start-up and shut-down left out).
need nginx:nginx-light valgrind
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
start_static_upstream
wait_port "$UPSTREAM_PORT"
FEW="${FEW:-200}"
MANY="${MANY:-1200}"
python3 -c '
import json
system = " ".join("word%d" % (i % 97) for i in range(1500))
print(json.dumps({"messages": [{"role": "system", "content": system}, {"role": "user", "content": "hi"}], "max_tokens": 16}))
' > "$WORK/body.json"
echo
echo "instructions per call (callgrind; $FEW and $MANY calls, a 1,500-token system prompt)"
for policy in round_robin prompt_cache; do
  per=$(callgrind_per_call "$(printf '[balancing]\npolicy = "%s"' "$policy")" 3 "$WORK/body.json")
  echo "$policy $per" >> "$WORK/instructions"
  printf "  %-13s %9d\n" "$policy" "$per"
done
awk '{ n[$1] = $2 } END { printf "  prompt_cache against round_robin: %+.2f%%\n", 100 * (n["prompt_cache"] / n["round_robin"] - 1) }' "$WORK/instructions"

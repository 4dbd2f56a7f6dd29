#!/usr/bin/env bash
# Gateway overhead, measured in one run on loopback: the same chat completion request sent
#   direct   to a simulated Azure OpenAI resource,
#   gateway  through aoai-gateway (auth, validation against the typed model, round-robin, awc),
#   nginx    through nginx as a plain reverse proxy (a reference for what any proxy costs),
# at concurrency 1 (latency) and at concurrency $CONNECTIONS (throughput), with wrk. The three
# targets are measured in turn, $ROUNDS rounds, and the medians are compared: a shared machine's
# noise moves single runs by tens of percent. Absolute numbers depend on the machine; ratios less.
#
# Everything runs on one machine, so the load generator, the backend and the proxy compete for
# its cores, which a real deployment (the backend in an Azure region, the gateway on its own
# host) does not do. Each measurement is therefore made in two CPU layouts:
#   shared     every process may run on every core: the proxy's CPU is taken from the backend
#              and from wrk, so the throughput ratio says how heavy the proxy is;
#   isolated   wrk and the backend on core 0, the proxy alone on core 1: the throughput ratio
#              says whether the proxy keeps up with a backend when it has a core of its own.
#              Latency is measured in the shared layout only: here wrk and the backend hand
#              each request over on one core, which no proxied request can do.
#
# The backend is the simulator (UPSTREAM=sim, the default) or a static nginx answering every
# call with one 0.5 KB chat completion (UPSTREAM=static): steadier and cheaper than the
# simulator, so the proxies' own cost shows; the performance issue's yardstick, CPU per call of
# the gateway against nginx's, is read there. The gateway runs with every feature on: auth,
# typed validation, usage accounting and a subscription with limits (in-process state).
#
#   bench/run.sh                       # 3 rounds of 5 s per measurement (~2.5 minutes)
#   UPSTREAM=static bench/run.sh       # in front of a static nginx
#   ROUNDS=5 DURATION=10 CONNECTIONS=64 bench/run.sh
#   LAYOUTS=shared bench/run.sh        # one layout only
#   PROXY_WORKERS=2 bench/run.sh       # gateway and nginx workers (default 1; the simulated
#                                      # backend always has 1, standing in for a remote service)
#
# Installs wrk and nginx with apt-get where missing. Everything binds 127.0.0.1 and stops at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-3}"
PROXY_WORKERS="${PROXY_WORKERS:-1}"
LAYOUTS="${LAYOUTS:-shared isolated}"
UPSTREAM="${UPSTREAM:-sim}"
if [ "$(nproc)" -lt 2 ]; then LAYOUTS=shared; fi

source bench/lib.sh
need wrk nginx:nginx-light
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

cargo build --release --quiet
BIN=target/release/aoai-gateway
WORK="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

SIM_PORT=$(free_port); NGINX_PORT=$(free_port)
export SIMULATOR_API_KEY="bench-backend-key" BENCH_BACKEND_KEY="bench-backend-key" BENCH_CLIENT_KEY="bench-client-key"

mkdir -p "$WORK/nginx" "$WORK/static"
if [ "$UPSTREAM" = static ]; then
  # What a chat completion answers, usage included, for every call.
  answer='{"id":"chatcmpl-bench","object":"chat.completion","created":1733000000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_bench","choices":[{"index":0,"finish_reason":"stop","logprobs":null,"message":{"role":"assistant","content":"Hello, benchmark! This answer is the same every time, so that the upstream costs little."}}],"usage":{"prompt_tokens":24,"completion_tokens":18,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}'
  cat > "$WORK/static.conf" <<NGINX
worker_processes 1;
$(nginx_common "$WORK/static")
http {
  access_log off;
  $(temp_paths "$WORK/static")
  server {
    listen 127.0.0.1:$SIM_PORT;
    keepalive_requests 1000000;
    location / {
      default_type application/json;
      add_header x-ms-region "East US";
      add_header apim-request-id "00000000-0000-0000-0000-000000000000";
      return 200 '$answer';
    }
  }
}
NGINX
  "$NGINX" -c "$WORK/static.conf" -p "$WORK/static" -g 'daemon off;' 2>/dev/null & pids+=($!)
else
  RUST_LOG=warn "$BIN" simulate --listen "127.0.0.1:$SIM_PORT" --region "East US" --workers 1 --chunk-delay-ms 0 & pids+=($!)
fi
SIM_PID=$!

GATEWAY_WORKERS=$PROXY_WORKERS start_gateway gateway "$BIN" "" "$HIGH_LIMITS" "http://127.0.0.1:$SIM_PORT"
GW_PORT=${PORT[gateway]}; GW_PID=${PID[gateway]}

cat > "$WORK/nginx.conf" <<NGINX
worker_processes $PROXY_WORKERS;
$(nginx_common "$WORK/nginx")
http {
  access_log off;
  $(temp_paths "$WORK/nginx")
  upstream simulator { server 127.0.0.1:$SIM_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /openai/ {
      proxy_pass http://simulator;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header api-key $BENCH_BACKEND_KEY;
      proxy_buffering off;
    }
  }
}
NGINX
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK/nginx" -g 'daemon off;' 2>/dev/null & pids+=($!)
NGINX_PID=$!

wait_port "$SIM_PORT"; wait_port "$GW_PORT"; wait_port "$NGINX_PORT"
# The gateway's memory before its first call: every feature configured, nothing used yet.
sleep 0.5
idle_kb=$(awk '/VmRSS/ { print $2 }' "/proc/$GW_PID/status")
NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
# The backend's processes (a static nginx has a worker beside its master).
SIM_PIDS="$SIM_PID $(pgrep -P "$SIM_PID" | tr '\n' ' ')"

chat_lua "$WORK/chat.lua"
# Each target answers once before it is measured (and must answer 200).
check "$SIM_PORT" "$BENCH_BACKEND_KEY"; check "$GW_PORT" "$BENCH_CLIENT_KEY"; check "$NGINX_PORT" "$BENCH_CLIENT_KEY"

ALL_CPUS="0-$(( $(nproc) - 1 ))"
# Puts every thread of the backend, the proxies and (through WRK_CPUS) wrk on the layout's cores.
layout() {
  local backend proxy p
  case $1 in
    shared) backend=$ALL_CPUS; proxy=$ALL_CPUS; WRK_CPUS=$ALL_CPUS ;;
    isolated) backend=0; proxy=1; WRK_CPUS=0 ;;
  esac
  for p in $SIM_PIDS; do taskset -a -p -c "$backend" "$p" >/dev/null; done
  for p in "$GW_PID" $NGINX_PIDS; do taskset -a -p -c "$proxy" "$p" >/dev/null; done
}

echo "aoai-gateway benchmark: POST chat/completions (non-streaming), $ROUNDS rounds x ${DURATION}s per measurement, loopback, $(nproc) cores"
echo "backend: $UPSTREAM, 1 worker; gateway and nginx: $PROXY_WORKERS worker(s) each; wrk: 1 thread; layouts: $LAYOUTS"
printf "\n%-9s %-6s %-10s %-6s %12s %10s %10s %14s\n" layout round target conns "requests/s" "p50 ms" "p99 ms" "CPU us/request"
: > "$WORK/results"
for round in $(seq "$ROUNDS"); do
  for lay in $LAYOUTS; do
    layout "$lay"
    concurrencies="1 $CONNECTIONS"; [ "$lay" = shared ] || concurrencies=$CONNECTIONS
    for conns in $concurrencies; do
      for target in direct gateway nginx; do
        case $target in
          direct) port=$SIM_PORT; key=$BENCH_BACKEND_KEY; server=$SIM_PIDS ;;
          gateway) port=$GW_PORT; key=$BENCH_CLIENT_KEY; server=$GW_PID ;;
          nginx) port=$NGINX_PORT; key=$BENCH_CLIENT_KEY; server=$NGINX_PIDS ;;
        esac
        # shellcheck disable=SC2086 # nginx is several processes
        read -r rps p50 p99 cpu < <(measure "$port" "$key" "$conns" $server)
        echo "$lay $round $target $conns $rps $p50 $p99 $cpu" >> "$WORK/results"
        printf "%-9s %-6s %-10s %-6s %12s %10s %10s %14s\n" "$lay" "$round" "$target" "$conns" "$rps" "$p50" "$p99" "$cpu"
      done
    done
  done
done

rss_kb=$(awk '/VmRSS/ { print $2 }' "/proc/$GW_PID/status")
python3 - "$WORK/results" "$CONNECTIONS" "$rss_kb" "$LAYOUTS" "$idle_kb" <<'PY'
import statistics, sys
from collections import defaultdict
rows = [line.split() for line in open(sys.argv[1])]
c, rss, layouts, idle = sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), int(sys.argv[5])
runs = defaultdict(dict)
for lay, rnd, target, conns, rps, p50, p99, cpu in rows:
    runs[(lay, rnd, conns)][target] = (float(rps), float(p50), float(p99), float(cpu))
print()
print("medians over rounds (each ratio or difference is taken within a round, then the median across rounds)")
for lay in layouts:
    def median(conns, f):
        return statistics.median(f(m) for (l, _, cc), m in runs.items() if l == lay and cc == conns)
    latency = any(l == lay and cc == '1' for l, _, cc in runs)
    print(f"layout {lay}:")
    for t in ("direct", "gateway", "nginx"):
        at1 = f"c=1: p50 {median('1', lambda x: x[t][1]):.3f} ms, p99 {median('1', lambda x: x[t][2]):.3f} ms;  " if latency else ""
        print(f"  {t:8} {at1}c={c}: {median(c, lambda x: x[t][0]):.0f} requests/s")
    if latency:
        print(f"  added latency at concurrency 1: gateway p50 +{median('1', lambda x: x['gateway'][1] - x['direct'][1]):.3f} ms, p99 +{median('1', lambda x: x['gateway'][2] - x['direct'][2]):.3f} ms;"
              f"  nginx p50 +{median('1', lambda x: x['nginx'][1] - x['direct'][1]):.3f} ms, p99 +{median('1', lambda x: x['nginx'][2] - x['direct'][2]):.3f} ms")
    print(f"  throughput vs direct at {c} connections: gateway {median(c, lambda x: x['gateway'][0] / x['direct'][0]):.2f}x,"
          f"  nginx {median(c, lambda x: x['nginx'][0] / x['direct'][0]):.2f}x;  gateway vs nginx {median(c, lambda x: x['gateway'][0] / x['nginx'][0]):.2f}x")
    print(f"  CPU per request at {c} connections (the server alone): backend {median(c, lambda x: x['direct'][3]):.1f} us,"
          f"  gateway {median(c, lambda x: x['gateway'][3]):.1f} us,  nginx {median(c, lambda x: x['nginx'][3]):.1f} us;"
          f"  gateway vs nginx {median(c, lambda x: x['gateway'][3] / x['nginx'][3]):.2f}x")
print(f"gateway resident memory before its first call: {idle / 1024:.1f} MiB; after the runs: {rss / 1024:.1f} MiB")
PY

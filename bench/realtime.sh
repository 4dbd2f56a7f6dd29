#!/usr/bin/env bash
# The realtime WebSocket through the gateway, in one run on loopback: $SESSIONS sessions at once
# (200), each sending 20 ms audio appends at $RATE events/s (50) and, every tenth event, a
# commit whose `committed` answer times a round trip, for $DURATION s, against
#   direct   the simulated resource itself,
#   gateway  aoai-gateway (every session authenticated, reserved, balanced; every event read
#            for response.create/response.done, frames re-framed both ways),
#   nginx    nginx as a plain WebSocket reverse proxy (bytes passed through),
# measured in turn, $ROUNDS rounds (bench/realtime.rs is the load). Per target: the round trip
# (p50, p99; the proxy's added latency is the difference with direct), the proxy's CPU per
# event relayed (client events and server events alike), and its resident memory per open
# session (RSS with every session open, less RSS before, in the first round: the processes are
# fresh then).
#
#   bench/realtime.sh
#   SESSIONS=50 RATE=20 DURATION=5 ROUNDS=1 bench/realtime.sh
#
# Installs nginx with apt-get where missing. Everything binds 127.0.0.1 and stops at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS="${SESSIONS:-200}"
RATE="${RATE:-50}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
source bench/lib.sh
need nginx:nginx-light
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# Apart: an example takes the dev-dependencies' features (the generated models), which the
# gateway's binary must not be built with.
cargo build --release --quiet --example realtime
cargo build --release --quiet --bin aoai-gateway
BIN=target/release/aoai-gateway
LOAD=target/release/examples/realtime
WORK="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
export SIMULATOR_API_KEY="bench-backend-key" BENCH_BACKEND_KEY="bench-backend-key" BENCH_CLIENT_KEY="bench-client-key"

SIM_PORT=$(free_port)
RUST_LOG=warn "$BIN" simulate --listen "127.0.0.1:$SIM_PORT" --region "East US" --workers 1 --chunk-delay-ms 0 & pids+=($!)
SIM_PID=$!
start_gateway gateway "$BIN" "" "$HIGH_LIMITS" "http://127.0.0.1:$SIM_PORT"
GW_PORT=${PORT[gateway]}; GW_PID=${PID[gateway]}

NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
$(nginx_common "$WORK/nginx")
http {
  access_log off;
  $(temp_paths "$WORK/nginx")
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://127.0.0.1:$SIM_PORT;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 300s;
    }
  }
}
NGINX
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK/nginx" -g 'daemon off;' 2>/dev/null & pids+=($!)
NGINX_PID=$!
wait_port "$SIM_PORT"; wait_port "$GW_PORT"; wait_port "$NGINX_PORT"
# nginx's worker is the process that relays.
sleep 0.3
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)

PATH_Q="/openai/v1/realtime?model=gpt-realtime"
printf "%-6s %-8s %9s %9s %9s %11s %14s\n" round target p50_ms p99_ms events "CPU us/evt" "KiB/session"
for round in $(seq "$ROUNDS"); do
  for target in direct gateway nginx; do
    case $target in
      direct) port=$SIM_PORT; key=$SIMULATOR_API_KEY; pid=0 ;;
      gateway) port=$GW_PORT; key=$BENCH_CLIENT_KEY; pid=$GW_PID ;;
      nginx) port=$NGINX_PORT; key=$SIMULATOR_API_KEY; pid=$NGINX_WORKER ;;
    esac
    read -r p50 p99 events cpu idle open < <("$LOAD" "ws://127.0.0.1:$port$PATH_Q" "$key" "$SESSIONS" "$RATE" "$DURATION" "$pid")
    # Memory per session in the first round only: later rounds find what the first left in
    # the process's allocator, and grow it little.
    per_session=-
    [ "$pid" != 0 ] && [ "$round" = 1 ] && per_session=$(( (open - idle) / SESSIONS ))
    [ "$pid" = 0 ] && cpu=-
    printf "%-6s %-8s %9s %9s %9s %11s %14s\n" "$round" "$target" "$p50" "$p99" "$events" "$cpu" "$per_session"
    sleep 1
  done
done

# Helpers the bench scripts share; `source "$(dirname "$0")/lib.sh"`.

# Installs the Debian packages named, with apt-get, unless their command is there:
# need wrk nginx:nginx-light (command:package where they differ).
need() {
  local missing=() spec cmd pkg
  for spec in "$@"; do
    cmd=${spec%%:*}; pkg=${spec#*:}
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 did not open" >&2; exit 1
}

# CPU time (user + system, clock ticks) used so far by some processes.
cpu_ticks() { local total=0 p; for p in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$total"; }
TICK=$(getconf CLK_TCK)

# The chat call the benches send: wrk's script, and the path.
chat_lua() {
  cat > "$1" <<'LUA'
wrk.method = "POST"
wrk.body = '{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark."}],"temperature":0.2,"max_tokens":50}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["api-key"] = os.getenv("BENCH_KEY")
LUA
}
PATH_Q="/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"

# Fails unless the server on port $1 answers a chat call with key $2 with 200 (the body
# $CHECK_BODY, when set).
check() {
  local code body='{"messages":[{"role":"user","content":"hi"}]}'
  [ -n "${CHECK_BODY:-}" ] && body="$CHECK_BODY"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$1$PATH_Q" -H "api-key: $2" -H 'content-type: application/json' -d "$body")
  [ "$code" = 200 ] || { echo "server on port $1 answered $code" >&2; exit 1; }
}

# One wrk run of the chat call against port $1 with key $2 at $3 connections, for $DURATION s
# (pinned to $WRK_CPUS when set) → "requests/s p50_ms p99_ms cpu_us_per_request", the CPU being
# that of the processes named by the other arguments. Fails on any non-2xx answer.
measure() {
  local port=$1 key=$2 conns=$3; shift 3
  local before used pin=()
  [ -n "${WRK_CPUS:-}" ] && pin=(taskset -c "$WRK_CPUS")
  before=$(cpu_ticks "$@")
  BENCH_KEY="$key" "${pin[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$WORK/chat.lua" "http://127.0.0.1:$port$PATH_Q" > "$WORK/out" 2>&1
  used=$(( $(cpu_ticks "$@") - before ))
  if grep -q "Non-2xx" "$WORK/out"; then echo "non-2xx answers from port $port:" >&2; cat "$WORK/out" >&2; exit 1; fi
  awk -v used="$used" -v tick="$TICK" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /requests in/ { total = $1 }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%.0f %.3f %.3f %.1f\n", rps, p50, p99, used / tick * 1e6 / total }' "$WORK/out"
}

# The top of an nginx config whose files live in directory $1.
nginx_common() {
  cat <<NGINX
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
NGINX
}
# nginx's temporary paths, all in directory $1.
temp_paths() {
  echo "client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;"
}

# The bench subscription's limits: high enough that nothing is refused, so that every call
# still reserves and settles.
HIGH_LIMITS='[subscriptions.limits]
tokens_per_minute = 1000000000
requests_per_minute = 1000000000
tokens_per_day = 100000000000'

# Starts a static nginx on a free port, UPSTREAM_PORT: every call gets the same 0.5 KB chat
# completion, usage included, so that what a proxy in front of it costs shows; and
# /v1/traces takes every OTLP batch, as a collector that keeps up would. Needs NGINX and WORK.
start_static_upstream() {
  UPSTREAM_PORT=$(free_port)
  local answer
  mkdir -p "$WORK/static"
  answer='{"id":"chatcmpl-bench","object":"chat.completion","created":1733000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"finish_reason":"stop","logprobs":null,"message":{"role":"assistant","content":"Hello, benchmark! This answer is the same every time, so that the upstream costs little."}}],"usage":{"prompt_tokens":24,"completion_tokens":18,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}'
  cat > "$WORK/static.conf" <<NGINX
worker_processes 1;
$(nginx_common "$WORK/static")
http {
  access_log off;
  $(temp_paths "$WORK/static")
  server {
    listen 127.0.0.1:$UPSTREAM_PORT;
    keepalive_requests 1000000;
    # The trace sink: an OTLP collector that takes every batch.
    location = /v1/traces {
      default_type application/x-protobuf;
      return 200 '';
    }
    location / {
      default_type application/json;
      add_header x-ms-region "East US";
      return 200 '$answer';
    }
  }
}
NGINX
  "$NGINX" -c "$WORK/static.conf" -p "$WORK/static" -g 'daemon off;' 2>/dev/null & pids+=($!)
}

declare -A PORT PID
# Starts a gateway on a free port: start_gateway NAME BINARY TOP SUBSCRIPTION ENDPOINT...
# Its config ($WORK/NAME.toml) has $GATEWAY_WORKERS workers (1), TOP at the top, one backend
# per endpoint (the bench backend key) and the bench subscription, SUBSCRIPTION after it.
# Sets PORT[NAME] and PID[NAME] and adds the process to pids.
start_gateway() {
  local name=$1 bin=$2 top=$3 subscription=$4 port i=0 endpoint
  shift 4
  port=$(free_port)
  {
    printf 'listen = "127.0.0.1:%s"\nworkers = %s\n%s\n' "$port" "${GATEWAY_WORKERS:-1}" "$top"
    for endpoint in "$@"; do
      i=$((i + 1))
      printf '[[backends]]\nname = "region-%s"\nendpoint = "%s"\nregion = "East US"\napi_key_env = "BENCH_BACKEND_KEY"\n' "$i" "$endpoint"
    done
    printf '[[subscriptions]]\nname = "bench"\nkey_env = "BENCH_CLIENT_KEY"\n%s\n' "$subscription"
  } > "$WORK/$name.toml"
  RUST_LOG=warn "$bin" serve --config "$WORK/$name.toml" >/dev/null 2>&1 & pids+=($!)
  PORT[$name]=$port; PID[$name]=$!
}

# Measures the gateways named (started by start_gateway) in turn, $ROUNDS rounds, with the chat
# call at $CONNECTIONS connections: prints a row each, and writes "round name cpu" lines to
# $WORK/results for the script's summary.
measure_rounds() {
  local round name rps cpu
  printf "%-6s %-7s %12s %14s\n" round gateway "requests/s" "CPU us/call"
  : > "$WORK/results"
  for round in $(seq "$ROUNDS"); do
    for name in "$@"; do
      read -r rps _ _ cpu < <(measure "${PORT[$name]}" "$BENCH_CLIENT_KEY" "$CONNECTIONS" "${PID[$name]}")
      echo "$round $name $cpu" >> "$WORK/results"
      printf "%-6s %-7s %12s %14s\n" "$round" "$name" "$rps" "$cpu"
    done
  done
}

# Stops what a bench started ($pids) and removes its scratch folder ($WORK), and the worktree a
# revision was built in there, if any: `trap stop_all EXIT`.
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -d "$WORK/before-src" ]; then git worktree remove --force "$WORK/before-src" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}

# Builds git revision $1 in a scratch worktree below $WORK; BUILT is its binary.
build_revision() {
  echo "building $1 in a scratch worktree..."
  git worktree add --detach "$WORK/before-src" "$1" >/dev/null 2>&1
  (cd "$WORK/before-src" && cargo build --release --quiet --locked)
  BUILT="$WORK/before-src/target/release/aoai-gateway"
}

# Sets BEFORE from the bench's arguments (`before=<git revision or binary>`; empty without one);
# any other argument is refused.
before_arg() {
  BEFORE=""
  local arg
  for arg in "$@"; do
    case $arg in
      before=*) BEFORE="${arg#before=}" ;;
      *) echo "unknown argument $arg" >&2; exit 2 ;;
    esac
  done
}

# Instructions per proxied call of the gateway $BIN (valgrind's callgrind, which a shared
# machine's noise does not move): callgrind_per_call TOP BACKENDS [BODY_FILE]. The gateway, with
# TOP at the top of its config and BACKENDS backends on UPSTREAM_PORT, is run twice under
# callgrind, for $FEW and $MANY sequential calls (bench/calls.py, with BODY_FILE's body when
# given); the difference divided by the difference in calls leaves start-up and shut-down out.
# $SETTLE seconds (0) pass before each stop, for work a call leaves behind (a trace export).
callgrind_per_call() {
  local top=$1 backends=$2 body=${3:-} few many
  few=$(callgrind_run "$top" "$backends" "$FEW" "$body")
  many=$(callgrind_run "$top" "$backends" "$MANY" "$body")
  echo $(( (many - few) / (MANY - FEW) ))
}

callgrind_run() {
  local top=$1 backends=$2 calls=$3 body=$4 port vg i
  port=$(free_port)
  {
    printf 'listen = "127.0.0.1:%s"\nworkers = 1\n%s\n' "$port" "$top"
    for i in $(seq "$backends"); do
      printf '[[backends]]\nname = "r%s"\nendpoint = "http://127.0.0.1:%s"\napi_key_env = "BENCH_BACKEND_KEY"\n' "$i" "$UPSTREAM_PORT"
    done
    printf '[[subscriptions]]\nname = "bench"\nkey_env = "BENCH_CLIENT_KEY"\n'
  } > "$WORK/cg.toml"
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
    "$BIN" serve --config "$WORK/cg.toml" >/dev/null 2>"$WORK/vg.log" & vg=$!
  PATH_Q="$PATH_Q" python3 bench/calls.py "$calls" "$port" $body
  sleep "${SETTLE:-0}"
  kill -INT "$vg"; wait "$vg" 2>/dev/null || true
  awk '/Collected/ { print $NF }' "$WORK/vg.log"
}

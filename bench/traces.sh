#!/usr/bin/env bash
# What OpenTelemetry traces cost per proxied call, counted in instructions (valgrind's
# callgrind), which a shared machine's noise does not move: this build's gateway, in front of a
# static nginx (one 0.5 KB chat completion for every call, and an OTLP sink that takes every
# batch), with traces off, at `otel.sample_ratio` 0.1 and at 1.0. Each is run twice under
# callgrind, for $FEW and $MANY sequential calls; the difference divided by the difference in
# calls is the cost of a call, start-up and shut-down left out. The export thread's work
# (protobuf encoding, the HTTP posts) is counted: it is the gateway's.
#
#   bench/traces.sh                 # FEW=300 MANY=1800 (about 3 minutes)
#   FEW=500 MANY=3000 bench/traces.sh
#   bench/traces.sh before=/path/to/aoai-gateway   # also another build, traces off (a build
#                                                  # without tracing, to see what it added)
#
# CPU time, as the other benches measure it: TRACES=1 bench/compare.sh (and TRACES_RATIO=0.1).
# Installs nginx and valgrind with apt-get where missing. Everything binds 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
FEW="${FEW:-300}"
MANY="${MANY:-1800}"
BEFORE=""
for arg in "$@"; do
  case $arg in
    before=*) BEFORE="${arg#before=}" ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done

source bench/lib.sh
need nginx:nginx-light valgrind
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
WORK="$(mktemp -d)"
pids=()
trap stop_all EXIT

cargo build --release --quiet
BIN=target/release/aoai-gateway
export BENCH_BACKEND_KEY="bench-backend-key" BENCH_CLIENT_KEY="bench-client-key"
start_static_upstream
wait_port "$UPSTREAM_PORT"

# Instructions the gateway ($BIN) ran for $2 calls with the otel section $1 ("" for none).
instructions() {
  local otel=$1 calls=$2 port vg
  port=$(free_port)
  printf 'listen = "127.0.0.1:%s"\nworkers = 1\n%s\n[[backends]]\nname = "r1"\nendpoint = "http://127.0.0.1:%s"\napi_key_env = "BENCH_BACKEND_KEY"\n[[subscriptions]]\nname = "bench"\nkey_env = "BENCH_CLIENT_KEY"\n' \
    "$port" "$otel" "$UPSTREAM_PORT" > "$WORK/gw.toml"
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
    "$BIN" serve --config "$WORK/gw.toml" >/dev/null 2>"$WORK/vg.log" & vg=$!
  PATH_Q="$PATH_Q" python3 bench/calls.py "$calls" "$port"
  sleep 2   # a last export, for the traced runs
  kill -INT "$vg"; wait "$vg" 2>/dev/null || true
  awk '/Collected/ { print $NF }' "$WORK/vg.log"
}

echo "instructions per proxied call (callgrind; $FEW and $MANY calls per configuration)"
: > "$WORK/results"
if [ -n "$BEFORE" ]; then
  THIS="$BIN"; BIN="$BEFORE"
  few=$(instructions "" "$FEW"); many=$(instructions "" "$MANY")
  printf "  before (%s), traces off: %d instructions per call\n" "$BEFORE" $(( (many - few) / (MANY - FEW) ))
  BIN="$THIS"
fi
for config in off 0.1 1.0; do
  otel=""
  [ "$config" = off ] || otel=$(printf '[otel]\nendpoint = "http://127.0.0.1:%s"\nsample_ratio = %s' "$UPSTREAM_PORT" "$config")
  few=$(instructions "$otel" "$FEW")
  many=$(instructions "$otel" "$MANY")
  per=$(( (many - few) / (MANY - FEW) ))
  echo "$config $per" >> "$WORK/results"
  printf "  traces %-4s %9d instructions per call\n" "$config" "$per"
done
awk '$1 == "off" { off = $2 } { rows[$1] = $2 }
     END { for (r in rows) if (r != "off") printf "  traces at ratio %s: %+.0f%% against off\n", r, 100 * (rows[r] / off - 1) }' "$WORK/results" | sort

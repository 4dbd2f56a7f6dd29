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

source bench/lib.sh
before_arg "$@"
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

SETTLE=2   # a last export, for the traced runs

echo "instructions per proxied call (callgrind; $FEW and $MANY calls per configuration)"
: > "$WORK/results"
if [ -n "$BEFORE" ]; then
  THIS="$BIN"; BIN="$BEFORE"
  printf "  before (%s), traces off: %d instructions per call\n" "$BEFORE" "$(callgrind_per_call "" 1)"
  BIN="$THIS"
fi
for config in off 0.1 1.0; do
  otel=""
  [ "$config" = off ] || otel=$(printf '[otel]\nendpoint = "http://127.0.0.1:%s"\nsample_ratio = %s' "$UPSTREAM_PORT" "$config")
  per=$(callgrind_per_call "$otel" 1)
  echo "$config $per" >> "$WORK/results"
  printf "  traces %-4s %9d instructions per call\n" "$config" "$per"
done
awk '$1 == "off" { off = $2 } { rows[$1] = $2 }
     END { for (r in rows) if (r != "off") printf "  traces at ratio %s: %+.0f%% against off\n", r, 100 * (rows[r] / off - 1) }' "$WORK/results" | sort

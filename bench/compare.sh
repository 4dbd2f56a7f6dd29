#!/usr/bin/env bash
# CPU time per proxied call of two builds of the gateway, measured in one run: BEFORE (a binary,
# or a git revision built in a scratch worktree) and this checkout's release build, in front of
# the same static nginx upstream (one 0.5 KB chat completion for every call, so that the
# gateway's own cost shows), each with every feature on (auth, validation, usage read from the
# answer, a subscription with limits), measured in turn for $ROUNDS rounds with wrk at
# $CONNECTIONS connections. Reports each build's median and the median of the per-round ratio:
# a shared machine's noise moves single runs by tens of percent, so compare within a run only.
#
#   bench/compare.sh before=HEAD~3                   # builds that revision in a worktree
#   bench/compare.sh before=/path/to/aoai-gateway    # or uses that binary
#   STREAM=1 bench/compare.sh before=...             # chat bodies that ask for a stream (whose
#                                                    # prompt the gateway counts)
#   V1=1 bench/compare.sh before=...                 # the v1 API's chat completions (the body's
#                                                    # `model` names the deployment; the route
#                                                    # has fields that may name stored objects)
#   ROUNDS=7 DURATION=5 bench/compare.sh before=...
#   TRACES=1 bench/compare.sh                        # this build without and with OpenTelemetry
#                                                    # traces (ratio 1.0, every call exported
#                                                    # over OTLP/HTTP to a sink on the upstream)
#
# Installs wrk and nginx with apt-get where missing. Everything binds 127.0.0.1 and stops at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-4}"
CONNECTIONS="${CONNECTIONS:-32}"
ROUNDS="${ROUNDS:-5}"
STREAM="${STREAM:-0}"
V1="${V1:-0}"
TRACES="${TRACES:-0}"
source bench/lib.sh
before_arg "$@"
[ "$TRACES" = 1 ] && BEFORE=target/release/aoai-gateway
[ -n "$BEFORE" ] || { echo "usage: bench/compare.sh before=<git revision or binary>" >&2; exit 2; }
need wrk nginx:nginx-light
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

WORK="$(mktemp -d)"
pids=()
trap stop_all EXIT

cargo build --release --quiet
AFTER=target/release/aoai-gateway
if [ "$TRACES" = 1 ]; then
  echo "before: traces off; after: traces on (otel.sample_ratio 1.0), the same build"
elif [ ! -x "$BEFORE" ]; then
  build_revision "$BEFORE"
  BEFORE="$BUILT"
fi

export BENCH_BACKEND_KEY="bench-backend-key" BENCH_CLIENT_KEY="bench-client-key"
start_static_upstream

BACKEND="http://127.0.0.1:$UPSTREAM_PORT"
start_gateway before "$BEFORE" "" "$HIGH_LIMITS" "$BACKEND"
AFTER_TOP=""
if [ "$TRACES" = 1 ]; then
  AFTER_TOP=$(printf '[otel]\nendpoint = "%s"\nsample_ratio = %s' "$BACKEND" "${TRACES_RATIO:-1.0}")
fi
start_gateway after "$AFTER" "$AFTER_TOP" "$HIGH_LIMITS" "$BACKEND"
for p in "$UPSTREAM_PORT" "${PORT[@]}"; do wait_port "$p"; done

chat_lua "$WORK/chat.lua"
if [ "$STREAM" = 1 ]; then sed -i 's/"max_tokens":50}/"max_tokens":50,"stream":true}/' "$WORK/chat.lua"; fi
if [ "$V1" = 1 ]; then
  sed -i 's/{"messages"/{"model":"gpt-4o","messages"/' "$WORK/chat.lua"
  PATH_Q="/openai/v1/chat/completions"
  export CHECK_BODY='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
fi
for name in before after; do check "${PORT[$name]}" "$BENCH_CLIENT_KEY"; done

echo "CPU per proxied call: POST ${PATH_Q%%\?*}$([ "$STREAM" = 1 ] && echo ' (stream: true)'), $ROUNDS rounds x ${DURATION}s, $CONNECTIONS connections, one worker each, $(nproc) cores"
measure_rounds before after
python3 - "$WORK/results" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, name, cpu = line.split()
    runs[rnd][name] = float(cpu)
med = lambda f: statistics.median(f(r) for r in runs.values())
ratios = sorted(r['after'] / r['before'] for r in runs.values())
print()
print(f"medians: before {med(lambda r: r['before']):.2f} us, after {med(lambda r: r['after']):.2f} us per call")
print(f"after vs before: {100 * (med(lambda r: r['after'] / r['before']) - 1):+.1f}% (per-round ratios {', '.join(f'{x:.3f}' for x in ratios)})")
PY

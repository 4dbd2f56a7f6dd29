#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then runs the checks CI runs.
#   - system packages (Debian): chromium for the docs test, python3-venv for the SDK tests,
#     redis-server for the shared-state tests
#   - Redis: REDIS_URL if set; else the one at 127.0.0.1:6379, started here if none answers
#   - Python packages: the openai SDK and schemathesis, into .venv
#   - cargo fmt --check, cargo clippy -D warnings, cargo test for every crate
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/conformance/requirements.txt
export AOAI_TEST_PYTHON="$PWD/.venv/bin/python"
export AOAI_TEST_CHROMIUM="${AOAI_TEST_CHROMIUM:-$(command -v chromium)}"

# A Redis for the shared-state tests: each uses keys of its own and removes them.
if [ -z "${REDIS_URL:-}" ]; then
  export REDIS_URL="redis://127.0.0.1:6379"
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting redis-server on 127.0.0.1:6379 for the tests"
    redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
      >/dev/null 2>&1 &
    redis_pid=$!
    trap 'kill "$redis_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 50); do
      redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
      sleep 0.1
    done
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The tests that need the Python venv, Chromium or Redis are #[ignore]d, so that `cargo test` passes on
# a machine with only Rust; here everything they need is installed, so they run too.
cargo test --workspace --locked -- --include-ignored

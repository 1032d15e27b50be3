#!/usr/bin/env bash
# Measurements (not tests): release binary sizes, cold start through a local Lambda
# Runtime API next to a hello-world lambda_http binary, argon2id and withdrawal latency,
# and the capacity units and cost of every operation.
# Starts its own moto server (the first answers make real DynamoDB calls against it).
# Results go to stdout as Markdown tables; docs/PERFORMANCE.md records the latest.
# `bench.sh capacity` runs the capacity units and cost tables alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

target=${CARGO_TARGET_DIR:-target}
[[ -x .venv/bin/python ]] || { python3 -m venv .venv && .venv/bin/python -m pip install --quiet 'moto[server]>=5.1,<6'; }

start_moto() {
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .venv/bin/python infra/scripts/moto_server.py "$port" >/dev/null 2>&1 &
  moto_pid=$!
  trap 'kill $moto_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  export MOTO_ENDPOINT="http://127.0.0.1:$port"
}

# Capacity units and cost per operation: the tour of every operation, metered (the
# `measure` profile, so that argon2id takes its real time).
capacity() {
  cargo build --profile measure -p fund-account-tests --bin capacity
  echo
  "$target/measure/capacity"
}

if [[ ${1:-} == capacity ]]; then
  start_moto
  capacity
  exit 0
fi

functions=$(for dir in functions/*/; do basename "$dir"; done)
packages=$(for f in $functions; do printf -- '-p %s ' "$f"; done)
# The functions and their hello-world reference share the release profile (fat LTO);
# the measuring tools use the `measure` profile. The functions build on their own, so
# that no other package's features (the embedded store) are unified into them.
# shellcheck disable=SC2086
cargo build --release $packages
cargo build --release -p bench --bin hello-lambda
cargo build --profile measure -p bench --bin coldstart --bin latency --bin load

echo
echo "| function | release binary (x86_64, stripped) |"
echo "|---|---|"
for f in $functions hello-lambda; do
  printf '| %s | %s KiB |\n' "$f" "$(( $(stat -c %s "$target/release/$f") / 1024 ))"
done

if [[ ${ARM64:-0} == 1 ]]; then
  # What `sam build` ships: cargo-lambda's arm64 `bootstrap` per function (installed into
  # its own venv; needs `rustup target add aarch64-unknown-linux-gnu`).
  [[ -x .venv-lambda/bin/cargo-lambda ]] || { python3 -m venv .venv-lambda && .venv-lambda/bin/python -m pip install --quiet cargo-lambda; }
  # shellcheck disable=SC2086
  PATH="$PWD/.venv-lambda/bin:$PATH" cargo lambda build --release --arm64 \
    $(for f in $functions; do printf -- '--package %s ' "$f"; done)
  echo
  echo "| function | bootstrap (arm64, stripped) |"
  echo "|---|---|"
  for f in $functions; do
    printf '| %s | %s KiB |\n' "$f" "$(( $(stat -c %s "$target/lambda/$f/bootstrap") / 1024 ))"
  done
fi

start_moto

echo
http_functions=$(for f in $functions; do [[ -f events/$f.json && $f != reconcile ]] && echo "$f"; done)
# shellcheck disable=SC2086
"$target/measure/coldstart" "$target/release" events $http_functions
echo
"$target/measure/latency" "${SAMPLES:-40}"
echo
"$target/measure/load" "${LOAD_SECONDS:-5}" "${LOAD_CONNECTIONS:-16}"

echo
# The hot seller in the simulator (docs/PERFORMANCE.md#hot-seller-issue-14): one seller at
# 2,000 collections/s for 60 simulated seconds; the figures print with the test.
cargo test -p fund-account-tests --test hot_seller -- --nocapture 2>&1 | sed -n '/^hot seller/,/^test /p' | grep -v '^test '

echo
capacity

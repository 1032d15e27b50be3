#!/usr/bin/env bash
# Measurements (not tests): release binary sizes, cold start through a local Lambda
# Runtime API next to a hello-world lambda_http binary and a plain-SDK one (init and first
# answer, also through TLS), CPU per request and the memory model (issue 14), argon2id and
# withdrawal latency, the gateway's load with and without group commit, the hot seller in
# the simulator, and the capacity units and cost of every operation.
# FUNCTIONS="get-account withdraw" limits the functions measured.
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

functions=${FUNCTIONS:-$(for dir in functions/*/; do basename "$dir"; done)}
packages=$(for f in $functions; do printf -- '-p %s ' "$f"; done)
# The functions and their hello-world reference share the release profile (fat LTO);
# the measuring tools use the `measure` profile. The functions build on their own, so
# that no other package's features (the embedded store) are unified into them.
# shellcheck disable=SC2086
cargo build --release $packages
cargo build --release -p bench --bin hello-lambda --bin plain-sdk-lambda
cargo build --profile measure -p bench --bin coldstart --bin latency --bin load

echo
echo "| function | release binary (x86_64, stripped) |"
echo "|---|---|"
for f in $functions hello-lambda plain-sdk-lambda; do
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
# The real services speak TLS: a proxy in front of moto, with a certificate for 127.0.0.1
# from a CA made here, which the functions trust through SSL_CERT_FILE (the SDK's rustls
# connector reads its roots with rustls-native-certs, which honours it): the system's
# roots plus this CA, so loading them costs what it costs in Lambda.
tls_dir=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.pem" -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tls_dir/leaf.key" -out "$tls_dir/leaf.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls_dir/ext.cnf"
openssl x509 -req -in "$tls_dir/leaf.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$tls_dir/ext.cnf" -out "$tls_dir/leaf.pem" 2>/dev/null
cat /etc/ssl/certs/ca-certificates.crt "$tls_dir/ca.pem" >"$tls_dir/roots.pem"
tls_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/python infra/scripts/tls_proxy.py "$tls_port" "$port" "$tls_dir/leaf.pem" "$tls_dir/leaf.key" >/dev/null 2>&1 &
tls_pid=$!
trap 'kill $moto_pid $tls_pid 2>/dev/null || true; rm -rf "$tls_dir"' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null && break; sleep 0.1; done
export TLS_ENDPOINT="https://127.0.0.1:$tls_port" TLS_CA_FILE="$tls_dir/roots.pem"

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

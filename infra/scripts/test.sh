#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what it needs (a project-local
# Python venv with moto's DynamoDB/SNS server, cfn-lint and aws-sam-cli; checkov in
# .venv-checkov), starts the emulator, then runs formatting, lints, template checks
# (cfn-lint, sam validate --lint, checkov with 0 failed checks) and every test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n== %s\n' "$*"; }

step "python tools (.venv)"
[[ -x .venv/bin/python ]] || python3 -m venv .venv
if ! .venv/bin/python -c 'import moto.server, werkzeug, cfnlint' 2>/dev/null; then
  .venv/bin/python -m pip install --quiet 'moto[server]>=5.1,<6' 'cfn-lint>=1,<2'
fi

step "moto server (DynamoDB + SNS emulator)"
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/python infra/scripts/moto_server.py "$port" >/tmp/fund-account-moto.$$.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
export MOTO_ENDPOINT="http://127.0.0.1:$port"
echo "moto listening on $MOTO_ENDPOINT"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "template checks (cfn-lint, sam validate --lint, checkov)"
bash infra/scripts/check-template.sh

step "cargo build --bins (the function binaries tests/function_binaries.rs runs)"
cargo build --workspace --bins

step "cargo test"
log=$(mktemp)
FUZZ_CASES=${FUZZ_CASES:-2000} cargo test --workspace 2>&1 | tee "$log"

step "schemathesis (openapi.yaml against the local gateway)"
bash infra/scripts/schemathesis.sh 2>&1 | tee -a "$log"

step "web client end-to-end (headless Chromium)"
bash infra/scripts/web-e2e.sh 2>&1 | tee -a "$log"

# One closing line for the whole run: every cargo test binary, the schemathesis cases
# and the browser tests.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^(web-e2e|schemathesis): / { p += $2; f += $4 }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"

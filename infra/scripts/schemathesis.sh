#!/usr/bin/env bash
# Property-based tests of the HTTP API from openapi.yaml: schemathesis generates valid
# and invalid requests for every operation and checks each answer against the spec.
# Runs against a fresh local gateway (debug build) on a free loopback port, with a
# member's bearer token (from /dev/members + /dev/login) and the internal key.
# Installs schemathesis (major version 4) into the project venv .venv on first use.
#
# Env: ST_MAX_EXAMPLES (default 50) test cases per operation in the fuzzing phase,
#      ST_SEED (default fixed, so runs repeat) the generation seed,
#      ST_KEEP=1 keeps the gateway's temp dir (data, log, schemathesis report).
# Prints a closing line `schemathesis: N passed, M failed`, counting each operation in
# each phase (examples, coverage, fuzzing) and each stateful scenario once.
#
# Checks: every schemathesis check, with the exceptions (and their reasons) in
# infra/scripts/schemathesis.toml.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n== %s\n' "$*"; }

step "schemathesis: install (.venv)"
if ! .venv/bin/st --version 2>/dev/null | grep -q 'version 4\.'; then
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/python -m pip install --quiet 'schemathesis>=4,<5'
fi
.venv/bin/st --version

step "schemathesis: local gateway"
cargo build -q -p local-gateway
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fund-account-schemathesis.XXXXXX")
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(24))')
base="http://127.0.0.1:$port"
LOCAL_GATEWAY_ADDR="127.0.0.1:$port" LOCAL_DATA_DIR="$tmp/data" LOCAL_INTERNAL_KEY="$key" \
  LOCAL_WEB_DIR="$tmp/no-web-client" RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/debug/local-gateway" >"$tmp/gateway.log" 2>&1 &
gateway_pid=$!
cleanup() {
  kill "$gateway_pid" 2>/dev/null || true
  wait "$gateway_pid" 2>/dev/null || true
  if [[ -n ${ST_KEEP:-} ]]; then echo "gateway data, log and report kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  if ! kill -0 "$gateway_pid" 2>/dev/null; then
    echo "the local gateway exited:" >&2
    cat "$tmp/gateway.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "local gateway on $base"

# A member with a phone-less, active account and money in both currencies, and its
# token, and a reference rate: so that the member routes get past 401/404/503 and reach
# their real checks.
token=$(BASE="$base" KEY="$key" .venv/bin/python - <<'PY'
import json, os, urllib.request

base, key = os.environ["BASE"], os.environ["KEY"]

def call(method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request) as response:
        return json.load(response)

member = "st-seller"
call("POST", "/dev/members", {"member_id": member, "login_password": "login-Pass-2026", "phone": None})
token = call("POST", "/dev/login", {"member_id": member, "login_password": "login-Pass-2026"})["access_token"]
auth = {"authorization": f"Bearer {token}"}
call("POST", "/v1/activation", {"payment_password": "Vault-Key-2026!"}, auth)
for currency in ("USD", "CNY"):
    call("POST", "/internal/collections",
         {"collection_id": f"st-{currency}", "member_id": member, "currency": currency, "amount": "100000"},
         {"x-internal-key": key})
call("POST", "/dev/reconcile")
# A fresh USD-CNY reference rate, so that quotes and previews across currencies get past
# 503 fx_rate_unavailable (it stays fresh for 5 minutes; the run takes well under).
from datetime import datetime, timezone
as_of = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
call("PUT", "/internal/fx-rates/USD-CNY", {"mid": "7.2", "as_of": as_of}, {"x-internal-key": key})
print(token)
PY
)

step "schemathesis: st run openapi.yaml"
max_examples=${ST_MAX_EXAMPLES:-50}
started=$SECONDS
status=0
# From the temp dir: schemathesis keeps a .schemathesis/ cache in the working directory.
# One worker: with two, Python 3.11's ast module sometimes fails inside hypothesis
# ("AST constructor recursion depth mismatch"), an error of the tool, not of the API.
(cd "$tmp" && "$root/.venv/bin/st" --no-color --config-file "$root/infra/scripts/schemathesis.toml" \
  run "$root/openapi.yaml" \
  --url "$base" \
  --header "Authorization: Bearer $token" \
  --header "x-internal-key: $key" \
  --max-examples "$max_examples" \
  --seed "${ST_SEED:-20260301}" \
  --workers 1 \
  --request-timeout 10 \
  --generation-database none \
  --report junit --report-dir "$tmp/report") 2>&1 | tee "$tmp/st.log" \
  || status=$?
echo "schemathesis took $((SECONDS - started)) s"
# The closing line counts the phases' results per operation (each phase line reads e.g.
# "✅ 16 passed  ❌ 1 failed  🚫 1 error"), not the generated cases.
phases=$(grep -E '^[[:space:]]+(✅|❌|🚫|⏭).*(passed|failed|error)' "$tmp/st.log" || true)
count() { awk -v words="$1" '{ for (i = 1; i < NF; i++) if ($(i + 1) ~ "^(" words ")$") s += $i } END { print s + 0 }' <<<"$phases"; }
passed=$(count passed)
failed=$(count 'failed|error|errors')
if (( status != 0 && failed == 0 )); then failed=1; fi
if (( status != 0 )); then
  echo "gateway log (last 20 lines):"
  tail -n 20 "$tmp/gateway.log"
fi
printf '\nschemathesis: %s passed, %s failed\n' "${passed:-0}" "${failed:-0}"
exit "$status"

#!/usr/bin/env bash
# End-to-end tests of the seller web client (web/app) in headless Chromium against a fresh
# local gateway. Installs what it needs: Debian's chromium (and a CJK font for the
# screenshots) through apt, and web/'s devDependencies (playwright-core, axe-core) with
# `npm ci`. Screenshots go to tests/artifacts/web/ (git-ignored).
#
# Env: LOCAL_GATEWAY_BIN (default $CARGO_TARGET_DIR/debug/local-gateway, built if missing or older
# than the Rust sources), WEB_E2E_KEEP_DATA=1 keeps the gateway's temp dir for a look.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD

step() { printf '\n== %s\n' "$*"; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

step "web e2e: chromium"
if [[ ! -x /usr/bin/chromium || ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]]; then
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >/dev/null
  as_root apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null | head -n 1

step "web e2e: node modules (npm ci)"
command -v node >/dev/null || { echo "node (20 or newer) is needed for the web tests" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
if (( node_major < 20 )); then
  echo "node $(node --version) is too old for the web tests: 20 or newer is needed" >&2
  exit 1
fi
if grep -q '"resolved"' web/package-lock.json; then
  echo 'web/package-lock.json records download addresses; run: node web/scripts/strip-resolved.mjs' >&2
  exit 1
fi
lock_sum=$(sha256sum web/package-lock.json | cut -d' ' -f1)
if [[ ! -d web/node_modules || "$(cat web/node_modules/.lock-sum 2>/dev/null)" != "$lock_sum" ]]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >web/node_modules/.lock-sum
else
  echo "web/node_modules is up to date"
fi

step "web e2e: local gateway"
gateway=${LOCAL_GATEWAY_BIN:-${CARGO_TARGET_DIR:-target}/debug/local-gateway}
if [[ -z ${LOCAL_GATEWAY_BIN:-} ]]; then
  if [[ ! -x $gateway ]] || [[ -n $(find shared infra/local-gateway Cargo.toml Cargo.lock \
      \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' -o -name '*.txt' \) \
      -newer "$gateway" -print -quit 2>/dev/null) ]]; then
    cargo build -q -p local-gateway
  fi
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fund-account-web-e2e.XXXXXX")
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
key=$(node -p 'require("crypto").randomBytes(24).toString("hex")')
LOCAL_GATEWAY_ADDR="127.0.0.1:$port" LOCAL_DATA_DIR="$tmp/data" LOCAL_INTERNAL_KEY="$key" \
  LOCAL_WEB_DIR="$root/web/app" "$gateway" >"$tmp/gateway.log" 2>&1 &
gateway_pid=$!
cleanup() {
  kill "$gateway_pid" 2>/dev/null || true
  wait "$gateway_pid" 2>/dev/null || true
  if [[ -n ${WEB_E2E_KEEP_DATA:-} ]]; then echo "gateway data and log kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 200); do
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$url/" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$gateway_pid" 2>/dev/null; then
    echo "the local gateway exited:" >&2
    cat "$tmp/gateway.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "local gateway on $url serving web/app"

step "web e2e: node --test web/tests/"
mkdir -p tests/artifacts/web
log="$tmp/node-test.log"
status=0
GATEWAY_URL="$url" INTERNAL_KEY="$key" node --test --test-reporter=spec --test-concurrency=1 \
  --test-timeout=180000 web/tests/ 2>&1 | tee "$log" || status=$?
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -n 1)
echo "screenshots: $(find tests/artifacts/web -name '*.png' | wc -l) in tests/artifacts/web/"
if (( status != 0 )); then
  echo "gateway log (last 40 lines):"
  tail -n 40 "$tmp/gateway.log"
fi
printf '\nweb-e2e: %s passed, %s failed\n' "${passed:-0}" "${failed:-0}"
exit "$status"

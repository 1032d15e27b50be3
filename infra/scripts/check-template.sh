#!/usr/bin/env bash
# Validates template.yaml offline: cfn-lint, then `sam validate --lint`, then the
# checkov security scan (0 failed checks; every exception is skipped inline in the
# template, with its reason, never here); and openapi.yaml with openapi-spec-validator.
# Installs the tools on first use into the git-ignored venvs .venv (cfn-lint and
# openapi-spec-validator, shared with moto), .venv-sam (aws-sam-cli, which pins its
# own boto3) and .venv-checkov (checkov, which pins boto3 and an older `packaging`
# that would break moto's and schemathesis' in .venv).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

export SAM_CLI_TELEMETRY=0
export PIP_DISABLE_PIP_VERSION_CHECK=1

# ensure_tool VENV EXECUTABLE PACKAGE: creates VENV and installs PACKAGE unless
# VENV/bin/EXECUTABLE already runs.
ensure_tool() {
  local venv=$1 exe=$2 package=$3
  if [[ -x "$venv/bin/$exe" ]] && "$venv/bin/$exe" --version >/dev/null 2>&1; then
    return 0
  fi
  echo "installing $package into $venv ..." >&2
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet "$package" >&2
}

ensure_tool .venv cfn-lint cfn-lint
ensure_tool .venv openapi-spec-validator openapi-spec-validator
ensure_tool .venv-sam sam aws-sam-cli
ensure_tool .venv-checkov checkov 'checkov>=3,<4'

echo "== cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml
echo "cfn-lint: no findings"

echo "== sam validate --lint"
.venv-sam/bin/sam validate --lint --region us-east-1 -t template.yaml

echo "== checkov template.yaml"
# --skip-download: offline, no call to the vendor's platform for its guideline links.
# Exits non-zero on any failed check.
.venv-checkov/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

echo "== openapi-spec-validator openapi.yaml"
.venv/bin/openapi-spec-validator openapi.yaml

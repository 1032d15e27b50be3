#!/usr/bin/env bash
# Mutation testing of the money core with cargo-mutants: each mutant (a deliberately broken
# copy of one function) must make at least one test fail. Too slow for every CI run (about
# 25 to 60 s per mutant on 2 cores); docs/TESTING.md records the last run's score per file.
#
#   bash infra/scripts/mutants.sh                      # every file of the money core
#   bash infra/scripts/mutants.sh shared/src/money.rs  # one file
#   MUTANTS_ARGS="--re settle_due" bash infra/scripts/mutants.sh shared/src/collection.rs
#                                                      # only some mutants (a re-check)
#
# It never touches your working tree: it mutates a git worktree of HEAD (commit first)
# under target/mutants/tree, builds into target/mutants/target (kept between runs, so
# only the first run builds the AWS SDK), and writes each file's results to
# target/mutants/out/<file>/mutants.out. The tests that cover a file run on the embedded
# store only (the DynamoDB variants of the same tests add minutes per mutant and catch no
# mutant the SQLite ones miss: the adapters are proven equal by tests/store_conformance.rs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
version=27.1.0

step() { printf '\n== %s\n' "$*"; }

if [[ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $version" ]]; then
  step "installing cargo-mutants $version"
  cargo install --locked "cargo-mutants@$version"
fi

# The tests that cover each file: the crate's unit tests (--lib), and for the operations
# also the integration tests that drive them (package fund-account-tests: each extra test
# binary costs link time on every mutant, so only those that exercise the file).
declare -A tests=(
  [shared/src/money.rs]="--lib"
  [shared/src/ledger.rs]="--lib"
  [shared/src/verification.rs]="--lib"
  [shared/src/password.rs]="--lib"
  [shared/src/activation.rs]="--lib --test activation --test bursts --test contention"
  [shared/src/withdrawal.rs]="--lib --test money --test bursts --test contention"
  [shared/src/collection.rs]="--lib --test money --test reconciliation --test crash_safety --test contention"
)
order=(shared/src/money.rs shared/src/ledger.rs shared/src/verification.rs shared/src/password.rs
  shared/src/activation.rs shared/src/withdrawal.rs shared/src/collection.rs)
files=("$@")
(( ${#files[@]} )) || files=("${order[@]}")

work=$root/target/mutants
tree=$work/tree
step "worktree of HEAD ($(git rev-parse --short HEAD)) at $tree"
if [[ -n $(git status --porcelain -- shared tests) ]]; then
  echo "note: uncommitted changes under shared/ or tests/ are not in the run (it mutates HEAD)"
fi
git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
git worktree prune
git worktree add --detach --force "$tree" HEAD >/dev/null

export CARGO_TARGET_DIR=$work/target
for file in "${files[@]}"; do
  selection=${tests[$file]:-}
  [[ -n $selection ]] || { echo "no test selection for $file (one of: ${order[*]})" >&2; exit 2; }
  out=$work/out/$file
  # A filtered re-check keeps its results apart from the last full run's.
  [[ -z ${MUTANTS_ARGS:-} ]] || out=$work/out/recheck/$file
  mkdir -p "$out"
  step "$file ($selection)"
  # shellcheck disable=SC2086 # the selection is a list of cargo arguments
  packages=(--package fund-account)
  [[ $selection == --lib ]] || packages+=(--package fund-account-tests)
  # cargo-mutants' own baseline runs only the mutated package's tests (it ignores
  # --test-package), so the baseline is run here, with the same selection, and skipped there.
  # shellcheck disable=SC2086
  (cd "$tree" && cargo test "${packages[@]}" $selection -- --skip dynamodb >"$out.baseline.log" 2>&1) \
    || { echo "the unmutated tree fails its tests: see $out.baseline.log" >&2; exit 1; }
  # shellcheck disable=SC2086
  (cd "$tree" && cargo mutants --in-place --no-shuffle -f "$file" "${packages[@]/--package/--test-package}" \
      --baseline skip --timeout 300 --output "$out" ${MUTANTS_ARGS:-} \
      -- $selection -- --skip dynamodb) || true # survivors are reported below, not fatal
done

step "score per file (caught / viable; unviable mutants do not build and are not counted)"
for file in "${files[@]}"; do
  outcomes=$work/out/${MUTANTS_ARGS:+recheck/}$file/mutants.out/outcomes.json
  [[ -f $outcomes ]] || { echo "$file: no outcomes"; continue; }
  python3 - "$file" "$outcomes" <<'EOF'
import json, sys
file, path = sys.argv[1], sys.argv[2]
outcomes = json.load(open(path))["outcomes"]
def summary(o):
    return o.get("summary")
mutants = [o for o in outcomes if o.get("scenario") != "Baseline"]
count = lambda kind: sum(1 for o in mutants if summary(o) == kind)
caught, missed, timeout, unviable = (count(k) for k in ("CaughtMutant", "MissedMutant", "Timeout", "Unviable"))
viable = caught + missed + timeout
score = 100.0 * (caught + timeout) / viable if viable else 100.0
print(f"{file}: {caught + timeout}/{viable} caught ({score:.1f}%), {missed} missed, {timeout} timeouts, {unviable} unviable")
for o in mutants:
    if summary(o) == "MissedMutant":
        m = o["scenario"]["Mutant"]
        print(f"  missed: {m['file']}:{m['span']['start']['line']}: {m.get('name') or m.get('description')}")
EOF
done

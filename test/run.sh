#!/usr/bin/env bash
# The test command (`npm test`): typecheck, lint, shellcheck, the harness's bats
# tests, then every test file under test/ (node's test runner).
# Usage: bash test/run.sh [test files...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -gt 0 ]; then
  exec node --import tsx --test --test-reporter=spec "$@"
fi

echo "== typecheck"; npx tsc --noEmit -p tsconfig.json
echo "== lint"; npx eslint .
echo "== shellcheck"; shellcheck -x --source-path=SCRIPTDIR harness/worker.sh harness/merge.sh harness/lib/*.sh scripts/*.sh .ci/run test/run.sh
echo "== bats (harness)"
bats_log=$(mktemp)
bats_status=0
bats --tap test/harness | tee "$bats_log" || bats_status=$?
echo "== tests"
mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}" 2>&1 | tee "$log" || status=$?
# One plain closing line for CI and people: "N passed, N failed".
passed=$(grep -oE '^ℹ pass [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
failed=$(grep -oE '^ℹ fail [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
passed=$((passed + $(grep -cE '^ok ' "$bats_log" || true)))
failed=$((failed + $(grep -cE '^not ok ' "$bats_log" || true)))
rm -f "$bats_log"
echo "tests: ${passed} passed, ${failed} failed"
[ "$bats_status" -eq 0 ] || exit "$bats_status"
exit "$status"

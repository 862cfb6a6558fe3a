#!/usr/bin/env bash
# The test command (`npm test`): typecheck, lint, shellcheck, the harness's bats
# tests, then every test file under test/ (node's test runner).
# Usage: bash test/run.sh [test files...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests never skip (CLAUDE.md), but node's runner and bats both exit 0 when some did:
# the summary's counts decide. skipped_in LOG: how many tests node's spec reporter
# (its "ℹ skipped N" and "ℹ todo N" lines) did not run as tests.
skipped_in() { awk '/^ℹ (skipped|todo) [0-9]+$/ { n += $3 } END { print n + 0 }' "$1"; }

if [ "$#" -gt 0 ]; then
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  status=0
  node --import tsx --test --test-reporter=spec "$@" 2>&1 | tee "$log" || status=$?
  skipped=$(skipped_in "$log")
  # Tests a name pattern or --test-only leaves out are reported as skipped: those are asked for.
  case " $* " in *" --test-name-pattern"* | *" --test-skip-pattern"* | *" --test-only"*) skipped=0 ;; esac
  if [ "$status" -eq 0 ] && [ "$skipped" -ne 0 ]; then
    echo "${skipped} test(s) skipped or todo: tests never skip (a missing dependency fails, saying how to install it)" >&2
    status=1
  fi
  exit "$status"
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
# One plain closing line for CI and people: "N passed, N failed, N skipped".
passed=$(grep -oE '^ℹ pass [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
failed=$(grep -oE '^ℹ fail [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
# bats marks a skipped test "ok N name # skip [reason]": no pass either.
bats_skipped=$(grep -cE '^ok [0-9]+ .*# skip( |$)' "$bats_log" || true)
passed=$((passed + $(grep -cE '^ok ' "$bats_log" || true) - bats_skipped))
failed=$((failed + $(grep -cE '^not ok ' "$bats_log" || true)))
skipped=$(($(skipped_in "$log") + bats_skipped))
rm -f "$bats_log"
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$bats_status" -eq 0 ] || exit "$bats_status"
[ "$status" -eq 0 ] || exit "$status"
if [ "$skipped" -ne 0 ]; then
  echo "${skipped} test(s) skipped or todo: tests never skip (a missing dependency fails, saying how to install it)" >&2
  exit 1
fi

#!/usr/bin/env bash
# The test command (`npm test`): typecheck, lint, then every test file under test/.
# Usage: bash test/run.sh [test files...]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -gt 0 ]; then
  exec node --import tsx --test --test-reporter=spec "$@"
fi

echo "== typecheck"; npx tsc --noEmit -p tsconfig.json
echo "== lint"; npx eslint .
echo "== tests"
mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"

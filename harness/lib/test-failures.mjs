#!/usr/bin/env node
// Compares two test logs: which tests fail after the fix that did not fail before.
// Usage: node test-failures.mjs <head.log> <base.log>
// Prints a JSON object { head: [...], base: [...], new: [...], fixed: [...] } and
// exits 0 when no test fails now that passed on the base (pre-existing failures,
// e.g. other open bugs, do not block a fix), 1 otherwise, 2 when the logs name no
// failing tests at all (the runner's output is not understood: count as failing).
import { readFileSync } from 'node:fs';

/** Failing test names from TAP (node:test), node's spec reporter, jest/vitest, pytest and mocha. */
export function failures(log) {
  const out = new Set();
  for (const raw of log.split('\n')) {
    // eslint-disable-next-line no-control-regex -- strips ANSI colour codes (ESC [ ... m)
    const line = raw.replace(/\x1b\[[0-9;]*m/g, '');
    let m;
    if ((m = /^\s*not ok \d+ - (.+?)(?:\s+#.*)?$/.exec(line))) out.add(m[1].trim());
    else if ((m = /^\s*[✖✕×]\s+(.+?)(?:\s+\(\d+(?:\.\d+)?\s*m?s\))?$/.exec(line))) out.add(m[1].trim());
    else if ((m = /^FAILED\s+(\S+)/.exec(line))) out.add(m[1].trim());
  }
  // Files and suites reported as failed only because a test inside them failed.
  for (const name of [...out]) if (/\.(test|spec)\.[cm]?[jt]sx?$/.test(name) || name === 'failing tests:') out.delete(name);
  return [...out];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [headLog, baseLog] = process.argv.slice(2);
  if (!headLog || !baseLog) {
    process.stderr.write('usage: test-failures.mjs <head.log> <base.log>\n');
    process.exit(2);
  }
  const head = failures(readFileSync(headLog, 'utf8'));
  const base = failures(readFileSync(baseLog, 'utf8'));
  const fresh = head.filter((t) => !base.includes(t));
  const fixed = base.filter((t) => !head.includes(t));
  process.stdout.write(JSON.stringify({ head, base, new: fresh, fixed }) + '\n');
  if (!head.length) process.exit(2);
  process.exit(fresh.length ? 1 : 0);
}

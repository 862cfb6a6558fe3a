#!/usr/bin/env node
// Compares two test logs: which tests fail after the fix that did not fail before.
// Usage: node test-failures.mjs <head.log> <base.log> [<head-root> <base-root>]
// Prints a JSON object { head: [...], base: [...], new: [...], fixed: [...] } and
// exits 0 when no test fails now that passed on the base (pre-existing failures,
// e.g. other open bugs, do not block a fix), 1 otherwise, 2 when the head's log names no
// failing test (the runner's output is not understood, or no test ran: count as failing),
// 3 when neither log names one (the caller tells a test command that cannot run at all
// from a fix that broke it by whether the base's run failed).
// A test file reported as failed (one that did not load: a syntax error, a missing
// module) counts as a failure like a test; the roots, the checkouts the logs were run
// in, are cut from such a file's path so the same file matches in both logs.
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const TEST_FILE = /\.(test|spec)\.[cm]?[jt]sx?$/;

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
  out.delete('failing tests:'); // the spec reporter's summary heading
  return [...out];
}

/** Whether a failure names a test file rather than a test. */
export const isTestFile = (name) => TEST_FILE.test(name);

/** A test file's path relative to ROOT (the checkout its log was run in); other names as they are. */
export function relativeTo(root, name) {
  if (!root || !isTestFile(name)) return name;
  const prefix = root.endsWith('/') ? root : `${root}/`;
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

/**
 * head and base: the tests failing in each (a file listed there only for a test inside
 * it is left out of these two); new: failures of head, files included, not in base.
 */
export function compare(headNames, baseNames) {
  const fresh = headNames.filter((t) => !baseNames.includes(t));
  const fixed = baseNames.filter((t) => !headNames.includes(t) && !isTestFile(t));
  return { head: headNames.filter((t) => !isTestFile(t)), base: baseNames.filter((t) => !isTestFile(t)), new: fresh, fixed };
}

// Run as a script: argv[1] may name it through a link, and the module's URL is its real
// path, percent-encoded (a space, non-ASCII), so the two are compared as real paths.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [headLog, baseLog, headRoot, baseRoot] = process.argv.slice(2);
  if (!headLog || !baseLog) {
    process.stderr.write('usage: test-failures.mjs <head.log> <base.log> [<head-root> <base-root>]\n');
    process.exit(2);
  }
  const head = failures(readFileSync(headLog, 'utf8')).map((n) => relativeTo(headRoot, n));
  const base = failures(readFileSync(baseLog, 'utf8')).map((n) => relativeTo(baseRoot, n));
  const result = compare(head, base);
  process.stdout.write(JSON.stringify(result) + '\n');
  if (!head.length) process.exit(base.length ? 2 : 3);
  process.exit(result.new.length ? 1 : 0);
}

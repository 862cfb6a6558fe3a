import assert from 'node:assert/strict';
import { test } from 'node:test';
// @ts-expect-error -- a plain .mjs script of the harness, without type declarations
import { compare, failures, relativeTo } from '../../harness/lib/test-failures.mjs';

test('test failures: a test file that failed to load counts, matched across the two checkouts', () => {
  const head = failures('not ok 1 - old bug\nnot ok 2 - /w/t-1.gate/test/b.test.js\n# fail 2\n').map((n: string) => relativeTo('/w/t-1.gate', n));
  const base = failures('not ok 1 - old bug\n# fail 1\n').map((n: string) => relativeTo('/w/t-1.base', n));
  assert.deepEqual(compare(head, base), { head: ['old bug'], base: ['old bug'], new: ['test/b.test.js'], fixed: [] });
  const baseToo = failures('not ok 1 - old bug\nnot ok 2 - /w/t-1.base/test/b.test.js\n').map((n: string) => relativeTo('/w/t-1.base', n));
  assert.deepEqual(compare(head, baseToo).new, [], 'the same file failing on the base is not new');
});

test('test failures: spec reporter lines, its summary heading left out, colours stripped', () => {
  const log = '\x1b[31m✖ old bug (1.2ms)\x1b[39m\n✖ /r/test/b.test.js (66.4ms)\n✖ failing tests:\n✖ old bug (1.2ms)\n';
  assert.deepEqual(failures(log), ['old bug', '/r/test/b.test.js']);
  assert.equal(relativeTo('/r/', '/r/test/b.test.js'), 'test/b.test.js');
  assert.equal(relativeTo('/r', '/elsewhere/test/b.test.js'), '/elsewhere/test/b.test.js', 'a path outside the root stays whole');
  assert.equal(relativeTo('/r', '/r/not a file'), '/r/not a file', 'only test files are cut');
});

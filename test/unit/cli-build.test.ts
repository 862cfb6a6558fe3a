/**
 * `bugbot build`'s report: one row a bundle, the statuses in one column.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildReport } from '../../control/cli.ts';
import { BUNDLES, type BundleName } from '../../lib/bundle.ts';

// Review finding (a new user): names were padded to 12 characters, so `intake-writer` (13)
// printed its status a column off the others'.
test('bugbot build lines up every bundle\'s status, the longest name included', () => {
  const names = Object.keys(BUNDLES) as BundleName[];
  const report = buildReport(names.map((name, i) => (i === 0 ? { name, status: 'failed', error: 'esbuild is not installed' } : { name, status: 'fresh' })));
  const rows = report.split('\n').slice(0, -1);
  assert.equal(rows.length, names.length);
  const columns = rows.map((row) => row.search(/fresh|failed/));
  assert.deepEqual(new Set(columns), new Set([Math.max(...names.map((n) => n.length)) + 2]), report);
  assert.match(rows[0]!, /failed: esbuild is not installed$/);
  assert.equal(buildReport([{ name: 'cli', status: 'built' }, { name: 'intake-writer', status: 'fresh' }]), 'cli            built\nintake-writer  fresh\n');
});

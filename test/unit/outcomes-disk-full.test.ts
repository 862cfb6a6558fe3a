import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { nextRevision, OutcomeArchive, type OutcomeRow } from '../../control/outcomes/archive.ts';
import { tempDir } from '../support/helpers.ts';
import { fillDisk, smallDisk } from '../support/tmpfs.ts';

function row(runId: number, reason: string): OutcomeRow {
  return {
    run_id: runId, ticket_id: 1, fingerprint: 'f', trigger_source: 'grafana', service: 's',
    started: '2026-11-21T10:00:00.000Z', finished: '2026-11-21T10:10:00.000Z', trigger_to_push_s: null, stages: {},
    outcome: 'failed', state: 'failed', reason, branch: null, commit: null, pushed_to: null, diff: null,
    tests: { passed: null, failed: null }, cost_usd: 0, model: null, attempt: 1, worker: 1, denials: [], regressions_detected_24h: null, revision: 1,
  };
}

test('an append the full disk cut short leaves no torn line and keeps the row: written, in order, once space is back', (t) => {
  const disk = smallDisk(t, '1m');
  const archive = new OutcomeArchive(disk);
  archive.append(row(1, 'first'));
  const filler = fillDisk(disk);
  // Longer than what is left of the archive's last page (tmpfs allocates by the page): part of it fits.
  assert.throws(() => archive.append(row(2, `worker failed: ${'x'.repeat(20_000)}`)), /ENOSPC/);
  const text = readFileSync(archive.path, 'utf8');
  assert.ok(text.endsWith('\n'), `no torn line: ...${JSON.stringify(text.slice(-80))}`);
  assert.deepEqual(new OutcomeArchive(disk).read().skipped, 0);
  assert.deepEqual(archive.unwritten(), { pending: 1, dropped: 0 });
  // Still full: the next row waits behind it, and a flush fails keeping both.
  assert.throws(() => archive.append(row(3, `second ${'y'.repeat(20_000)}`)), /ENOSPC/);
  assert.throws(() => archive.flushPending(), /ENOSPC/);
  assert.deepEqual(archive.unwritten(), { pending: 2, dropped: 0 });

  rmSync(filler);
  archive.append(row(4, 'after the space came back'));
  assert.deepEqual(archive.unwritten(), { pending: 0, dropped: 0 });
  const read = new OutcomeArchive(disk).read();
  assert.deepEqual(read.rows.map((r) => r.run_id), [1, 2, 3, 4]);
  assert.equal(read.skipped, 0);
});

test('a row that cannot be written at all (no error of the disk) is not kept: it would hold up every row after it', (t) => {
  const archive = new OutcomeArchive(tempDir(t));
  assert.throws(() => archive.append({ ...row(1, 'odd'), cost_usd: 1n as unknown as number }), /BigInt/);
  assert.deepEqual(archive.unwritten(), { pending: 0, dropped: 0 });
  archive.append(row(2, 'next'));
  assert.deepEqual(archive.readAll().map((r) => r.run_id), [2]);
});

// Review finding (day 1, ff8409f): a kept row was invisible to latest(), which the approvals
// and the 24-hour re-check build their revisions on: an approval meanwhile found no row for
// its run (or an older one) and its revision was lost or numbered as the kept row's.
test("a kept row is its run's latest in this process: a revision made meanwhile builds on it", (t) => {
  const disk = smallDisk(t, '1m');
  const archive = new OutcomeArchive(disk);
  archive.append(row(1, 'started'));
  const filler = fillDisk(disk);
  assert.throws(() => archive.append({ ...row(1, `awaiting approval ${'x'.repeat(20_000)}`), state: 'awaiting_approval', revision: 2 }), /ENOSPC/);
  const latest = archive.latest().find((r) => r.run_id === 1);
  assert.equal(latest?.revision, 2, 'the kept row');
  rmSync(filler);
  archive.append({ ...latest!, state: 'pushed', revision: nextRevision(latest!) });
  const read = new OutcomeArchive(disk);
  assert.deepEqual(read.readAll().map((r) => [r.revision, r.state]), [[1, 'failed'], [2, 'awaiting_approval'], [3, 'pushed']]);
  assert.deepEqual(read.latest().map((r) => r.revision), [3]);
});

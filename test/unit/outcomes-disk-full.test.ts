import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { OutcomeArchive, type OutcomeRow } from '../../control/outcomes/archive.ts';
import { fillDisk, smallDisk } from '../support/tmpfs.ts';

function row(runId: number, reason: string): OutcomeRow {
  return {
    run_id: runId, ticket_id: 1, fingerprint: 'f', trigger_source: 'grafana', service: 's',
    started: '2026-11-21T10:00:00.000Z', finished: '2026-11-21T10:10:00.000Z', trigger_to_push_s: null, stages: {},
    outcome: 'failed', state: 'failed', reason, branch: null, commit: null, pushed_to: null, diff: null,
    tests: { passed: null, failed: null }, cost_usd: 0, model: null, attempt: 1, worker: 1, denials: [], regressions_detected_24h: null, revision: 1,
  };
}

test('an append the full disk cut short leaves no torn line: the archive reads whole, and the next append after space is back too', (t) => {
  const disk = smallDisk(t, '1m');
  const archive = new OutcomeArchive(disk);
  archive.append(row(1, 'first'));
  const filler = fillDisk(disk);
  // Longer than what is left of the archive's last page (tmpfs allocates by the page): part of it fits.
  assert.throws(() => archive.append(row(2, `worker failed: ${'x'.repeat(20_000)}`)), /ENOSPC/);
  const text = readFileSync(archive.path, 'utf8');
  assert.ok(text.endsWith('\n'), `no torn line: ...${JSON.stringify(text.slice(-80))}`);
  assert.deepEqual(new OutcomeArchive(disk).read().skipped, 0);

  rmSync(filler);
  archive.append(row(3, 'after the space came back'));
  const read = new OutcomeArchive(disk).read();
  assert.deepEqual(read.rows.map((r) => r.run_id), [1, 3]);
  assert.equal(read.skipped, 0);
});

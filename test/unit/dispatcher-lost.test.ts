/**
 * Runs the database says are running with no worker of the dispatcher's on them (a
 * launch that failed after its claim, an end that could not be recorded) are reclaimed
 * once their lease runs out, while the control plane runs: not only at the next start.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { Dispatcher } from '../../control/dispatcher/pool.ts';
import { silentLogger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { claimNext, reclaimRuns } from '../../control/queue/leases.ts';
import { claimedRun } from '../support/helpers.ts';

test('a run with no worker on it goes back to the queue once its lease expires, with its outcome row and its reporters told', async (t) => {
  // Claimed, then nothing: as when the worker's log could not be opened or its spawn threw.
  const { home, clock, config, store, run } = claimedRun(t, { queue: { maxAttempts: 3 } });
  const archive = new OutcomeArchive(home);
  const finished: Array<{ state: string; reason: string }> = [];
  const dispatcher = new Dispatcher({
    config,
    store,
    archive,
    logger: silentLogger,
    pollMs: 20,
    // Nothing new is started: only the sweep runs.
    held: () => 'held for the test',
    onRunFinished: (row) => finished.push({ state: row.state, reason: row.reason }),
  });
  dispatcher.start();
  t.after(() => dispatcher.stop(100));

  await sleep(100);
  assert.equal(store.getTicket(run.ticket_id)!.state, 'running', 'still leased: left alone');

  // claimedRun's claim leases the run for 600 s.
  clock.advance(601);
  for (let i = 0; i < 100 && store.getTicket(run.ticket_id)!.state === 'running'; i++) await sleep(20);
  assert.equal(store.getTicket(run.ticket_id)!.state, 'queued');
  const row = store.stmt('SELECT state, finished_at FROM runs WHERE id = ?').get(run.id) as { state: string; finished_at: string | null };
  assert.equal(row.state, 'lost');
  assert.deepEqual(finished, [{ state: 'queued', reason: 'its lease expired with no worker on it; requeued (attempt 1 of 3)' }]);
  assert.deepEqual(archive.readAll().map((r) => [r.run_id, r.outcome, r.state]), [[run.id, 'failed', 'queued']]);
});

test("reclaimRuns keeps the runs it is told are alive, whatever their lease says", (t) => {
  const { clock, store, run } = claimedRun(t);
  // claimedRun's claim leases the run for 600 s.
  clock.advance(601);
  assert.deepEqual(reclaimRuns(store, { maxAttempts: 3, onlyExpired: true, reason: 'x', keep: new Set([run.id]) }), []);
  assert.equal(store.getTicket(run.ticket_id)!.state, 'running');
  assert.equal(reclaimRuns(store, { maxAttempts: 3, onlyExpired: true, reason: 'x' }).length, 1);
  assert.equal(claimNext(store, 1, null, 60)?.run.attempt, 2);
});

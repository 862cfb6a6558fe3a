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
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Approvals } from '../../control/dispatcher/approvals.ts';
import { Intake } from '../../control/intake/index.ts';
import { cancelTicket, claimNext, reclaimRuns, stoppingRuns } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor } from '../../lib/redact.ts';
import { alertEvent, blockedTicket, claimedRun, endWorker, fakeWorker, FakeClock, tempDir, testConfig, waitFor } from '../support/helpers.ts';
import { fillDisk, smallDisk } from '../support/tmpfs.ts';

/** The store, refusing to record a run's end (finishRun's transaction) as a busy or full SQLite would, until allow(). */
function refusingRunEnds(real: Store): { store: Store; allow: () => void } {
  let refuse = true;
  const store = new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'tx' || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      return (fn: () => unknown) => {
        if (refuse && new Error().stack?.includes('finishRun')) throw new Error('SQLITE_BUSY: database is locked');
        return (v as (f: () => unknown) => unknown).call(target, fn);
      };
    },
  });
  return { store, allow: () => (refuse = false) };
}

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
  await waitFor(() => store.getTicket(run.ticket_id)!.state !== 'running', 30_000, 'the expired lease to be swept');
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

test('a cancelled run no worker is on (cancelled after it was lost) is ended once its lease runs out: the ticket may run again', async (t) => {
  const { home, clock, config, store, run } = claimedRun(t);
  assert.deepEqual(cancelTicket(store, run.ticket_id, 'cli'), { was: 'running', now: 'failed' });
  const archive = new OutcomeArchive(home);
  const dispatcher = new Dispatcher({ config, store, archive, logger: silentLogger, pollMs: 20, held: () => 'held for the test' });
  dispatcher.start();
  t.after(() => dispatcher.stop(100));
  await sleep(100);
  assert.deepEqual(stoppingRuns(store).map((r) => r.id), [run.id], 'its lease still runs: its worker may be stopping');

  clock.advance(601);
  await waitFor(() => stoppingRuns(store).length === 0, 5_000, 'the stopping run to be ended');
  assert.equal(store.getTicket(run.ticket_id)!.state, 'failed', 'the cancel stands');
  const [row] = archive.readAll();
  assert.deepEqual([row?.run_id, row?.outcome, row?.state], [run.id, 'failed', 'failed']);
  assert.equal(row!.reason, 'cancelled by cli; its worker was stopped once its lease ran out');
  assert.equal(new Approvals({ config, store, logger: silentLogger }).requeue(run.ticket_id, 'alice').ok, true);
});

test("a run's end the database would not take is kept and recorded later as decided, never reclaimed as lost meanwhile", async (t) => {
  const home = tempDir(t);
  const clock = new FakeClock();
  const config = testConfig(home, { intake: { settleSeconds: 0 }, workers: 1 });
  const real = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => real.close());
  const [filed] = new Intake({ store: real, config, redactor: createRedactor() }).accept([alertEvent()]);
  const ticketId = filed!.ticketId!;
  // Its folder cannot be made (a file is in the way): the launch fails after the claim.
  mkdirSync(join(home, 'tickets'), { recursive: true });
  writeFileSync(join(home, 'tickets', String(ticketId)), '');
  // And the database refuses to record that end for now (busy, full), as SQLite would.
  const { store, allow } = refusingRunEnds(real);
  const archive = new OutcomeArchive(home);
  const dispatcher = new Dispatcher({ config, store, archive, logger: silentLogger, pollMs: 20 });
  dispatcher.start();
  t.after(() => dispatcher.stop(100));

  await waitFor(() => archive.readAll().length === 1, 5_000, 'the failed launch to be archived');
  assert.equal(real.getTicket(ticketId)!.state, 'running', 'its end is not recorded yet');
  // Its lease runs out meanwhile: it is not taken for a lost run (no second row, no requeue).
  clock.advance(601);
  await sleep(200);
  assert.equal(real.getTicket(ticketId)!.state, 'running');
  assert.equal(archive.readAll().length, 1);

  allow();
  // As decided: back in the queue with the attempt not counted (the machine could not host the run).
  await waitFor(() => real.getTicket(ticketId)!.state === 'queued', 5_000, 'the end to be recorded');
  assert.equal(real.getTicket(ticketId)!.attempt, 0);
  assert.equal(archive.readAll().length, 1, 'one row for the run');
  assert.match(archive.readAll()[0]!.reason, /could not prepare the ticket folder/);
  const run = real.stmt('SELECT state FROM runs WHERE ticket_id = ?').get(ticketId) as { state: string };
  assert.equal(run.state, 'finished');
});

// Review finding: a cancel that landed while a pushed run's end waited for a busy database
// turned the pushed fix into a failed ticket (the retry ignored that the run was cancelled),
// and a later requeue would have made the fix again.
test('a cancel that lands while a pushed run\'s end waits for the database: the fix stands over it, and the archive says so', async (t) => {
  const { home, config, store: real, run, ticket } = claimedRun(t);
  const { store, allow } = refusingRunEnds(real);
  const archive = new OutcomeArchive(home);
  const dispatcher = new Dispatcher({ config, store, archive, logger: silentLogger, pollMs: 20, held: () => 'held for the test' });
  // The worker ended pushed (its outcome, as its trap writes it); its end cannot be recorded now.
  const worker = fakeWorker(home, ticket, run, { exitCode: 0, phase: 'push' });
  writeFileSync(join(worker.ws.ticketDir, 'outcome.json'), JSON.stringify({ state: 'pushed', outcome: 'clean', reason: 'pushed to staging', started: null, finished: null, stages: {}, branch: 'bot/x', commit: 'abc123', pushed_to: 'staging', diff: null, tests: { passed: 1, failed: 0 }, cost_usd: 0, denials: [] }));
  endWorker(dispatcher, worker, 0);
  assert.equal(real.getTicket(ticket.id)!.state, 'running', 'its end is not recorded yet');
  // A person cancels meanwhile (the ticket still reads running).
  assert.equal(cancelTicket(real, ticket.id, 'alice')?.now, 'failed');

  allow();
  dispatcher.start();
  t.after(() => dispatcher.stop(100));
  await waitFor(() => real.getTicket(ticket.id)!.state === 'pushed', 5_000, 'the pushed end to stand over the cancel');
  const rows = archive.readAll();
  assert.equal(rows.at(-1)!.state, 'pushed');
  assert.match(rows.at(-1)!.reason, /it had pushed before the cancel — cancelled by alice — took effect/);
});

// Review findings on the environment pause: one failed launch paused the workers once per
// free slot in the same pass (and claimed the same ticket for each); and a failure that is
// the ticket's after all (its folder cannot be made) requeued it for ever, never counted.
test('a run the machine cannot host pauses the workers after one claim, and one ticket gets its attempt back only so often', async (t) => {
  const { home, config, store, ticket } = blockedTicket(t, { workers: 4, queue: { maxAttempts: 2 } });
  const archive = new OutcomeArchive(home);
  const slow = new Dispatcher({ config, store, archive, logger: silentLogger, pollMs: 20 });
  slow.start();
  // The pause is awaited; the window after it is for a second claim that must not come.
  await waitFor(() => slow.held(), 30_000, 'the first failed launch and the pause');
  await sleep(300);
  await slow.stop(100);
  assert.equal((store.stmt('SELECT COUNT(*) AS n FROM runs WHERE ticket_id = ?').get(ticket) as { n: number }).n, 1, 'one claim, then the pause');
  assert.match(slow.held() ?? '', /^paused after a run the machine could not host/);

  const fast = new Dispatcher({ config, store, archive, logger: silentLogger, pollMs: 20, pauseFirstMs: 5 });
  fast.start();
  t.after(() => fast.stop(100));
  await waitFor(() => store.getTicket(ticket)!.state === 'failed', 10_000, 'the ticket to fail in the end');
  const runs = store.stmt('SELECT attempt, reason FROM runs WHERE ticket_id = ? ORDER BY id').all(ticket) as Array<{ attempt: number; reason: string }>;
  // Three attempts given back, then maxAttempts (2) counted ones.
  assert.deepEqual(runs.map((r) => r.attempt), [1, 1, 1, 1, 2]);
  assert.match(runs[2]!.reason, /the machine could not host it: requeued \(this attempt not counted\)/);
  assert.match(runs[4]!.reason, /the machine could not host it 5 times for this ticket: attempt 2 of 2, giving up/);
});

// A worker on a full disk fails at whatever write comes first, often before the one that
// would say why (its environment-failure file): such a run counted against its ticket, and
// the next ticket was claimed onto the same full disk.
test('a worker that dies without an outcome on a full disk: the attempt is given back and the workers pause', async (t) => {
  const { home, config: base, store, ticket, run } = claimedRun(t, { queue: { maxAttempts: 1 } });
  const disk = smallDisk(t, '4m');
  const config = { ...base, home: disk, harness: { ...base.harness, minFreeDiskMb: 2 } };
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger: silentLogger, pollMs: 20 });
  const worker = fakeWorker(home, ticket, run);

  fillDisk(disk);
  endWorker(dispatcher, worker, 1);
  assert.equal(store.getTicket(ticket.id)!.state, 'queued', 'its one attempt given back');
  const reason = (store.stmt('SELECT reason FROM runs WHERE id = ?').get(run.id) as { reason: string }).reason;
  assert.match(reason, /^worker exited \(status 1\) without an outcome; the disk holding bugbot's home \(.+\) has \d+\.\d MB free; runs start again once it has 2 MB \(harness\.minFreeDiskMb\); the machine could not host it: requeued \(this attempt not counted\), and the workers pause$/);
  assert.match(dispatcher.held() ?? '', /^paused after a run the machine could not host/);
});

test("a run's outcome row a full disk refused is kept and written by the dispatcher once there is space", async (t) => {
  const { home, config, store, ticket, run } = claimedRun(t);
  const disk = smallDisk(t, '4m');
  const archive = new OutcomeArchive(disk);
  archive.ensure();
  const dispatcher = new Dispatcher({ config, store, archive, logger: silentLogger, pollMs: 20, held: () => 'held for the test' });
  t.after(() => dispatcher.stop(100));
  const worker = fakeWorker(home, ticket, run);

  const filler = fillDisk(disk);
  endWorker(dispatcher, worker, 1);
  assert.equal(store.getTicket(ticket.id)!.state, 'queued', 'the run is recorded all the same');
  assert.equal(archive.unwritten().pending, 1);
  assert.equal(archive.readAll().length, 0);

  rmSync(filler);
  dispatcher.start();
  await waitFor(() => archive.readAll().length === 1, 5_000, 'the kept row to be written');
  assert.equal(archive.readAll()[0]!.run_id, run.id);
  assert.equal(archive.unwritten().pending, 0);
});


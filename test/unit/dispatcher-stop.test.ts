/**
 * How the pool stops its workers: a graceful stop of the control plane (SIGTERM: a
 * restart, a deploy) asks them to stop and, past WORKER_STOP_WAIT_MS, kills them (either
 * way not the ticket's doing: its attempt is given back); a worker killed at its launch
 * leaves nothing of its run behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Dispatcher } from '../../control/dispatcher/pool.ts';
import { runTmpDir, runTmpRoot } from '../../control/dispatcher/workspace.ts';
import { Intake } from '../../control/intake/index.ts';
import { silentLogger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor } from '../../lib/redact.ts';
import { alertEvent, claimedRun, fakeWorker, tempDir, testConfig, waitFor } from '../support/helpers.ts';

// Review finding: a worker whose trap outlived the stop's wait (a push taking long, the
// repository lock held by another worker's fetch) was killed and then counted as one that
// died on its own: with queue.maxAttempts 1 a deploy failed its ticket for good.
test("a worker killed by the stop's SIGKILL (its trap ran past the wait) is requeued with its attempt given back", async (t) => {
  const { home, config, store, ticket, run } = claimedRun(t, { queue: { maxAttempts: 1 } });
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger: silentLogger, held: () => 'held for the test' });
  // A worker that does not stop on SIGTERM (the signal ignored by its whole process group,
  // as a trap busy with its cleanup holds it off), in a process group of its own as the pool starts it.
  // It says when the signal is ignored: a SIGTERM before that (a slow start-up) would end it.
  const trapped = join(home, 'trapped');
  const child = spawn('bash', ['-c', `trap '' TERM; sleep 30 & : >"$0"; wait`, trapped], { detached: true, stdio: 'ignore' });
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  });
  const w = { ...fakeWorker(home, ticket, run), child };
  t.after(() => clearInterval(w.timer));
  const pool = dispatcher as unknown as { active: Map<number, unknown>; finished(w: unknown, code: number | null, signal: NodeJS.Signals | null): void };
  pool.active.set(w.slot, w);
  child.on('close', (code, signal) => pool.finished(w, code, signal));
  await waitFor(() => existsSync(trapped), 30_000, 'the worker to ignore SIGTERM');

  await dispatcher.stop(300);

  const after = store.getTicket(ticket.id)!;
  assert.deepEqual([after.state, after.attempt], ['queued', 0], 'back in the queue, the attempt not counted');
  const reason = (store.stmt('SELECT reason FROM runs WHERE id = ?').get(run.id) as { reason: string }).reason;
  assert.equal(reason, 'stopped with the control plane mid-run, its worker killed (SIGKILL) before it finished stopping; requeued (this attempt not counted)');
});

// Review finding: a worker started whose run could not be recorded (a busy database) was
// killed and its ticket requeued, but the run's temp folder, made for it in the system's
// temp folder, stayed until the next start.
test("a worker killed at its launch (its process not recorded: a busy database) leaves no temp folder behind", async (t) => {
  const home = tempDir(t);
  const config = testConfig(home, { workers: 1, intake: { settleSeconds: 0 } });
  const real = new Store(join(home, 'bugbot.db'));
  t.after(() => real.close());
  const [filed] = new Intake({ store: real, config, redactor: createRedactor() }).accept([alertEvent()]);
  // The store refusing to record the worker's process, as a busy SQLite would.
  const store = new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'stmt') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      return (sql: string) => {
        if (sql.startsWith('UPDATE runs SET pid')) throw new Error('SQLITE_BUSY: database is locked');
        return target.stmt(sql);
      };
    },
  });
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger: silentLogger, pollMs: 20, pauseFirstMs: 60_000 });
  dispatcher.start();
  t.after(() => dispatcher.stop(100));

  const run = await waitFor(() => real.stmt("SELECT id, reason FROM runs WHERE reason IS NOT NULL").get() as { id: number; reason: string } | undefined, 10_000, 'the launch to fail');
  assert.match(run.reason, /^could not start the worker: SQLITE_BUSY/);
  const tmp = runTmpDir(runTmpRoot(home)!, filed!.ticketId!, run.id);
  await waitFor(() => !existsSync(tmp), 5_000, `the run's temp folder ${tmp} to go`).catch(() => undefined);
  assert.equal(existsSync(tmp), false, `${tmp} is left`);
});

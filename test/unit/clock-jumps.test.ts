/**
 * The wall clock steps (NTP correcting a bad server, a VM resumed from suspend) while
 * `bugbot start` runs. What bugbot stores stays on the wall clock (ISO strings, compared
 * with store.now()); what it waits for in this process (a pause, the next heartbeat, the
 * wait for a left worker, a phase's start) is a duration, measured on a monotonic clock:
 * a step must neither stretch it by the step's size nor cut it short.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Dispatcher } from '../../control/dispatcher/pool.ts';
import { REPO_ROOT } from '../../control/dispatcher/phases.ts';
import { reconcile } from '../../control/dispatcher/reconcile.ts';
import { silentLogger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { cancelTicket, setRunProcess } from '../../control/queue/leases.ts';
import { blockedTicket, claimedRun, fakeWorker, repoRoot, tempDir, waitFor } from '../support/helpers.ts';

const TEN_MINUTES = 600_000;
const AN_HOUR = 3_600_000;

/** Date.now() of this process stepped by `ms` from now on (new Date() and the store's clock are not). */
function stepDateNow(t: TestContext, ms: number): void {
  const real = Date.now.bind(Date);
  t.mock.method(Date, 'now', () => real() + ms);
}

test('a clock stepped back ten minutes does not stretch the workers\' 200 ms pause after a run the machine could not host', async (t) => {
  // Its ticket folder cannot be made (a file is in the way): every launch is the machine's failure.
  const { home, config, store, ticket } = blockedTicket(t);
  const runs = () => (store.stmt('SELECT COUNT(*) AS n FROM runs WHERE ticket_id = ?').get(ticket) as { n: number }).n;
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger: silentLogger, pollMs: 20, pauseFirstMs: 200 });
  dispatcher.start();
  t.after(() => dispatcher.stop(100));
  await waitFor(() => runs() === 1 && dispatcher.held(), 5_000, 'the first failed launch and the pause');

  stepDateNow(t, -TEN_MINUTES);
  await waitFor(() => runs() >= 2, 30_000, 'the next claim once the 200 ms pause is over').catch(() => undefined);
  assert.ok(runs() >= 2, `a 200 ms pause lasted the ten minutes the clock went back: still ${runs()} run, held: ${dispatcher.held()}`);
});

test("a clock stepped back ten minutes does not hold off the pool's heartbeats: a cancel from the database is seen at the next one", async (t) => {
  const { home, config, store, ticket, run } = claimedRun(t, { harness: { heartbeatSeconds: 1 } });
  const dispatcher = new Dispatcher({ config, store, archive: new OutcomeArchive(home), logger: silentLogger, held: () => 'held for the test' });
  const w = fakeWorker(home, ticket, run, { exitCode: null });
  t.after(() => clearInterval(w.timer));
  const beat = () => (dispatcher as unknown as { beat(w: unknown): void }).beat(w);

  beat();
  stepDateNow(t, -TEN_MINUTES);
  // Cancelled in the database (the CLI, with the server's API out of reach): the next heartbeat fails.
  assert.equal(cancelTicket(store, ticket.id, 'alice')?.now, 'failed');
  await sleep(1_200);
  beat();
  assert.equal(w.cancelled, 'lease lost', 'a heartbeat 1.2 s after the last (heartbeatSeconds 1) saw the cancel');
  assert.equal(w.termSent, true);
});

test('a clock stepped forward an hour while the start waits for a left worker to finish its push does not cut the wait short', async (t) => {
  const { home, config, store, ticket, run } = claimedRun(t);
  const ticketDir = join(home, 'tickets', String(ticket.id), `run-${run.id}`);
  mkdirSync(ticketDir, { recursive: true });
  writeFileSync(join(ticketDir, 'outcome.pending'), JSON.stringify({ state: 'pushed', outcome: 'clean', reason: 'pushed to staging', cost_usd: 0.5, stages: {} }));
  // The worker in the middle of its push: its trap writes the outcome once the push is through.
  const script = `trap 'sleep 0.4; mv "$2/outcome.pending" "$2/outcome.json"; exit 0' TERM; : >"$2/trapped"; while :; do sleep 0.05; done`;
  const worker = spawn('bash', ['-c', script, join(REPO_ROOT, 'harness', 'worker.sh'), '1', ticketDir], { detached: true, stdio: 'ignore' });
  t.after(() => {
    if (worker.exitCode === null && worker.signalCode === null) process.kill(-worker.pid!, 'SIGKILL');
  });
  await waitFor(() => existsSync(join(ticketDir, 'trapped')), 5_000, 'the worker to set its trap');
  setRunProcess(store, run.id, { pid: worker.pid! });

  // NTP steps the clock forward an hour just after the wait's deadline was taken.
  const real = Date.now.bind(Date);
  let calls = 0;
  t.mock.method(Date, 'now', () => real() + (calls++ ? AN_HOUR : 0));
  reconcile(config, store, silentLogger, new OutcomeArchive(home), { leftWorkersWaitMs: 10_000 });

  assert.equal(store.getTicket(ticket.id)!.state, 'pushed', 'waited for: its push recorded, not requeued to be made again');
});

/** run-phase.mjs with this process's Date.now() stepped by `stepMs` `afterMs` after it starts. */
function runPhase(t: TestContext, dir: string, stepMs: number, afterMs: number, args: string[]): ChildProcess {
  const preload = join(dir, 'step-clock.mjs');
  writeFileSync(preload, `const real = Date.now; let off = 0; setTimeout(() => { off = ${stepMs}; }, ${afterMs}).unref(); Date.now = () => real() + off;\n`);
  const child = spawn(process.execPath, ['--import', pathToFileURL(preload).href, join(repoRoot, 'harness/lib/run-phase.mjs'), '--phase', 'research', '--log', join(dir, 'research.log'), '--stats', join(dir, 'stats.json'), '--worktree', dir, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

const exitOf = (child: ChildProcess): Promise<{ code: number | null; stderr: string }> => {
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((r) => child.once('close', (code) => r({ code, stderr })));
};

/** A stand-in for Claude Code: its stream's events `gapMs` apart (each a tool call), then a successful result. */
function fakeSession(dir: string, calls: number, gapMs: number): string {
  const path = join(dir, 'session.mjs');
  writeFileSync(
    path,
    `const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; i < ${calls}; i++) {
  console.log(JSON.stringify({ type: 'assistant', message: { id: 'm' + i, model: 'm', usage: {}, content: [{ type: 'tool_use', id: 't' + i, name: 'Read', input: { file_path: 'a.ts' } }] } }));
  await sleep(${gapMs});
}
console.log(JSON.stringify({ type: 'result', subtype: 'success', is_error: false, num_turns: 1, total_cost_usd: 0 }));
`,
  );
  return path;
}

test('a clock stepped forward an hour while research waits for its worktree (--start-when) does not end the phase before it starts', async (t) => {
  const dir = tempDir(t);
  const ready = join(dir, 'worktree-ready');
  const child = runPhase(t, dir, AN_HOUR, 50, ['--start-when', ready, '--wall', '60', '--', process.execPath, fakeSession(dir, 1, 0)]);
  const done = exitOf(child);
  await sleep(400);
  writeFileSync(ready, '');
  const { code, stderr } = await done;
  assert.equal(code, 0, stderr);
});

test('a clock stepped forward an hour while the session waits for its prompt (--wait-for-stdin) does not end it', async (t) => {
  const dir = tempDir(t);
  const prompt = join(dir, 'prompt.md');
  const child = runPhase(t, dir, AN_HOUR, 50, ['--stdin', prompt, '--wait-for-stdin', '--wall', '60', '--', process.execPath, fakeSession(dir, 1, 0)]);
  const done = exitOf(child);
  await sleep(400);
  writeFileSync(prompt, 'fix it');
  const { code, stderr } = await done;
  assert.equal(code, 0, stderr);
  assert.equal((JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8')) as { killed: string | null }).killed, null);
});

test("a clock stepped back ten minutes does not freeze a phase's live progress, nor make its duration negative", async (t) => {
  const dir = tempDir(t);
  const progress = join(dir, 'progress.json');
  const seen: number[] = [];
  const child = runPhase(t, dir, -TEN_MINUTES, 500, ['--progress', progress, '--wall', '60', '--', process.execPath, fakeSession(dir, 4, 700)]);
  const done = exitOf(child);
  // Until the phase ends (the bound only keeps a hung child from looping for ever): a slow
  // start-up must not end the look before the events after the step.
  for (let i = 0; i < 1200 && child.exitCode === null; i++) {
    try {
      const p = JSON.parse(readFileSync(progress, 'utf8')) as { tool_calls: number; done: boolean };
      if (!p.done) seen.push(p.tool_calls);
    } catch {
      // not written yet, or being replaced
    }
    await sleep(50);
  }
  const { code, stderr } = await done;
  assert.equal(code, 0, stderr);
  // Events at about 0, 0.7, 1.4 and 2.1 s; the clock goes back at 0.5 s.
  assert.ok(Math.max(...seen) >= 3, `live progress after the step: ${JSON.stringify([...new Set(seen)])}`);
  const stats = JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8')) as { duration_s: number };
  assert.ok(stats.duration_s >= 2 && stats.duration_s < 60, `duration_s ${stats.duration_s}`);
});

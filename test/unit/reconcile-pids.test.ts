/**
 * Start-up reconciliation kills the process groups a run's pid files record
 * (devserver.pid, phase.pid, gate.pid) only while those PIDs still name the processes
 * the run started: after a reboot (or once a PID is reused) they name someone else's.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { cancelledRunEnd } from '../../control/dispatcher/outcome.ts';
import { REPO_ROOT } from '../../control/dispatcher/phases.ts';
import { reconcile, stopRunProcesses } from '../../control/dispatcher/reconcile.ts';
import { runTmpDir, runTmpRoot } from '../../control/dispatcher/workspace.ts';
import type { Logger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { cancelTicket, setRunProcess, stoppingRuns } from '../../control/queue/leases.ts';
import { claimedRun } from '../support/helpers.ts';

type Warning = { msg: string; fields: Record<string, unknown> };

function recordingLogger(): { logger: Logger; warnings: Warning[] } {
  const warnings: Warning[] = [];
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (msg, fields = {}) => warnings.push({ msg, fields }),
    error: () => {},
    child: () => logger,
  };
  return { logger, warnings };
}

/** A long-lived process in a process group of its own, killed after the test. */
function spawnGroup(t: TestContext, cmd: string, args: string[], argv0?: string): ChildProcess & { pid: number } {
  const child = spawn(cmd, args, { detached: true, stdio: 'ignore', ...(argv0 ? { argv0 } : {}) });
  assert.ok(child.pid, `${cmd} started`);
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  return child as ChildProcess & { pid: number };
}

/** A process whose command line names `path` (as Claude Code's --settings or bubblewrap's --bind do). */
function naming(t: TestContext, ...paths: string[]) {
  return spawnGroup(t, process.execPath, ['-e', 'setTimeout(() => {}, 30_000)', '--', ...paths]);
}

function exited(child: ChildProcess, ms = 5_000): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => (clearTimeout(timer), resolve(true)));
  });
}

function alive(child: ChildProcess): boolean {
  if (child.exitCode !== null || child.signalCode !== null) return false;
  try {
    process.kill(child.pid!, 0);
    return true;
  } catch {
    return false;
  }
}

/** Wait until /proc shows the child's own command line (spawn returns between fork and exec). */
async function execed(child: ChildProcess, text: string): Promise<void> {
  // Up to 30 s: a loaded machine may take seconds to exec a process.
  for (let i = 0; i < 3000; i++) {
    try {
      if (readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').includes(text)) return;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`process ${child.pid} never showed ${text}`);
}

function bootTimeS(): number {
  return Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))![1]);
}

/** A home whose database holds one running run (ticket 1, run 1), as a killed control plane leaves it. */
function runningRun(t: TestContext) {
  const { home, config, store, ticket, run } = claimedRun(t);
  const ticketDir = join(home, 'tickets', String(ticket.id), `run-${run.id}`);
  const worktree = join(home, 'worktrees', `ticket-${ticket.id}-run-${run.id}`);
  mkdirSync(ticketDir, { recursive: true });
  return { home, config, store, run, ticketDir, worktree };
}

test('a recorded PID now held by an unrelated process is left alone, and logged', async (t) => {
  const { config, store, ticketDir } = runningRun(t);
  // What a reboot leaves: the pid files name PIDs some other program of this user now holds.
  const stranger = spawnGroup(t, 'sleep', ['30']);
  await execed(stranger, 'sleep');
  writeFileSync(join(ticketDir, 'phase.pid'), String(stranger.pid));
  writeFileSync(join(ticketDir, 'devserver.pid'), String(stranger.pid));
  const { logger, warnings } = recordingLogger();

  const out = reconcile(config, store, logger);

  assert.equal(out.requeued, 1, 'the run itself is still reconciled');
  assert.equal(await exited(stranger, 500), false);
  assert.ok(alive(stranger), 'the unrelated process group survives');
  const left = warnings.filter((w) => /left a recorded process alone/.test(w.msg));
  assert.deepEqual(
    left.map((w) => [w.fields.pid, w.fields.file]),
    [
      [stranger.pid, join(ticketDir, 'devserver.pid')],
      [stranger.pid, join(ticketDir, 'phase.pid')],
    ],
  );
  assert.match(String(left[0]!.fields.reason), /its command line names none of /);
});

test('a run reclaimed at start gets its outcome row: failed, what it spent, what became of the ticket', (t) => {
  const { home, config, store, run, ticketDir } = runningRun(t);
  // The worker got as far as its trap (stopped by a signal) before the control plane came back.
  writeFileSync(
    join(ticketDir, 'outcome.json'),
    JSON.stringify({ state: 'cancelled', outcome: 'failed', reason: 'stopped by a signal (SIGTERM or SIGINT)', cost_usd: 1.2, stages: { research: { tokens: 900, tool_calls: 3, cost_usd: 1.2, duration_s: 4 } } }),
  );
  const archive = new OutcomeArchive(home);

  const out = reconcile(config, store, recordingLogger().logger, archive);

  assert.equal(out.requeued, 1);
  const [row] = archive.readAll();
  assert.equal(row?.run_id, run.id);
  assert.deepEqual([row!.outcome, row!.state, row!.cost_usd, row!.stages.research?.tokens, row!.trigger_to_push_s], ['failed', 'queued', 1.2, 900, null]);
  assert.match(row!.reason, /control plane restarted .*stopped by a signal.*requeued \(attempt 1 of/);
});

test('a run that failed while no control plane was up is failed at start, as the pool fails it: not retried', (t) => {
  const { home, config, store, run, ticketDir } = runningRun(t);
  writeFileSync(
    join(ticketDir, 'outcome.json'),
    JSON.stringify({ state: 'failed', outcome: 'failed', reason: 'implement: error_max_turns', cost_usd: 1.2, stages: { research: { tokens: 900, tool_calls: 3, cost_usd: 1.2, duration_s: 4 } } }),
  );
  const archive = new OutcomeArchive(home);
  const out = reconcile(config, store, recordingLogger().logger, archive);
  assert.equal(out.requeued, 0);
  assert.equal(store.getTicket(run.ticket_id)!.state, 'failed');
  const [row] = archive.readAll();
  assert.deepEqual([row!.run_id, row!.outcome, row!.state, row!.stages.research?.tokens], [run.id, 'failed', 'failed', 900]);
  assert.match(row!.reason, /^implement: error_max_turns \(finished while the control plane was down\)$/);
  assert.deepEqual(out.finished.map((f) => f.row.run_id), [run.id], 'its reporters are told');
});

// Review finding: a run whose worker found the machine unable to host it (harness_fail_env:
// the remote out of reach, the model endpoint down) while no control plane was up was
// failed for good at the next start, its reporters told, where the pool requeues it.
test('a run the machine could not host while no control plane was up is requeued at start, its attempt given back as the pool gives it', (t) => {
  const { home, config, store, run, ticketDir } = runningRun(t);
  const why = 'could not create the worktree from origin/main: fatal: unable to access: Could not resolve host: git.example.com';
  writeFileSync(join(ticketDir, 'environment-failure'), `${why}\n`);
  writeFileSync(join(ticketDir, 'outcome.json'), JSON.stringify({ state: 'failed', outcome: 'failed', reason: why, cost_usd: 0, stages: {} }));
  const archive = new OutcomeArchive(home);

  const out = reconcile(config, store, recordingLogger().logger, archive);

  const ticket = store.getTicket(run.ticket_id)!;
  assert.deepEqual([ticket.state, ticket.attempt], ['queued', 0], 'back in the queue, the attempt not counted');
  const reason = `${why} (while the control plane was down); the machine could not host it: requeued (this attempt not counted)`;
  assert.equal((store.stmt('SELECT reason FROM runs WHERE id = ?').get(run.id) as { reason: string }).reason, reason);
  const [row] = archive.readAll();
  assert.deepEqual([row!.run_id, row!.outcome, row!.state, row!.reason], [run.id, 'failed', 'queued', reason]);
  assert.deepEqual(out.finished.map((f) => [f.row.run_id, f.ticket.state]), [[run.id, 'queued']]);
});

test('a worker left pushing when the control plane restarts is asked to stop and waited for: its push stands, recorded, not made again', async (t) => {
  const { home, config, store, run, ticketDir } = runningRun(t);
  // The worker as the pool starts it, in the middle of its push: SIGTERM is held off until
  // the push is through (harness_run_uninterrupted), then its trap writes the outcome.
  writeFileSync(join(ticketDir, 'outcome.pending'), JSON.stringify({ state: 'pushed', outcome: 'clean', reason: 'pushed to staging', cost_usd: 0.5, stages: {} }));
  const script = `trap 'sleep 0.4; mv "$2/outcome.pending" "$2/outcome.json"; exit 0' TERM; : >"$2/trapped"; while :; do sleep 0.05; done`;
  const worker = spawnGroup(t, 'bash', ['-c', script, join(REPO_ROOT, 'harness', 'worker.sh'), '1', ticketDir]);
  for (let i = 0; i < 3000 && !existsSync(join(ticketDir, 'trapped')); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(join(ticketDir, 'trapped')), 'the worker set its trap');
  setRunProcess(store, run.id, { pid: worker.pid });
  const archive = new OutcomeArchive(home);

  const out = reconcile(config, store, recordingLogger().logger, archive, { leftWorkersWaitMs: 10_000 });

  assert.equal(await exited(worker), true);
  assert.equal(store.getTicket(run.ticket_id)!.state, 'pushed', 'recorded as pushed, not requeued to fix the same bug again');
  assert.equal(out.requeued, 0);
  assert.match(archive.readAll()[0]!.reason, /^pushed to staging \(finished while the control plane was down\)$/);
});

test("temp folders of runs that are not running go at start (a worker killed before its trap leaves its own)", (t) => {
  const { home, config, store, run } = runningRun(t);
  // The reclaimed run's folder, with what Claude Code leaves there, and a finished run's.
  const root = runTmpRoot(home, { create: true })!;
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const orphan = runTmpDir(root, run.ticket_id, run.id);
  const older = runTmpDir(root, 7, 3);
  for (const d of [join(orphan, 'claude-0', 'tasks'), join(older, 'claude-empty-x1')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(orphan, 'claude-0', 'tasks', 'out.txt'), 'task output\n');
  const { logger, warnings } = recordingLogger();

  reconcile(config, store, logger);

  assert.equal(existsSync(orphan), false, "the reclaimed run's temp folder");
  assert.equal(existsSync(older), false, "a finished run's temp folder");
  assert.deepEqual(warnings.filter((w) => /temp folder/.test(w.msg)).map((w) => w.fields.path).sort(), [orphan, older].sort());
});

test("the run's own leftovers are killed: Claude session, dev server, test gate", async (t) => {
  const { config, store, ticketDir, worktree } = runningRun(t);
  // Claude Code: its --settings are in the ticket folder's config/.
  const session = naming(t, '--settings', join(ticketDir, 'config', 'research.settings.json'));
  // The dev server's bubblewrap: --bind WORKTREE WORKTREE (argv0 as the harness runs it).
  const devserver = spawnGroup(t, process.execPath, ['-e', 'setTimeout(() => {}, 30_000)', '--', '--bind', worktree, worktree], 'bwrap');
  // The gate's shell: the ticket folder is one of its arguments.
  const gate = naming(t, 'gate', ticketDir);
  await Promise.all([execed(session, ticketDir), execed(devserver, worktree), execed(gate, ticketDir)]);
  writeFileSync(join(ticketDir, 'phase.pid'), String(session.pid));
  writeFileSync(join(ticketDir, 'devserver.pid'), String(devserver.pid));
  writeFileSync(join(ticketDir, 'gate.pid'), String(gate.pid));
  const { logger, warnings } = recordingLogger();

  reconcile(config, store, logger);

  assert.equal(await exited(session), true, 'the Claude session is killed');
  assert.equal(await exited(devserver), true, 'the dev server is killed');
  assert.equal(await exited(gate), true, 'the test gate is killed');
  assert.deepEqual(warnings.filter((w) => /left a recorded process alone/.test(w.msg)), []);
});

test('a pid file from before this boot names nothing of ours, whatever holds the PID now', async (t) => {
  const { home, run, ticketDir } = runningRun(t);
  // Even a process that names the ticket folder (a shell tailing its log, say).
  const tail = naming(t, join(ticketDir, 'worker.log'));
  await execed(tail, ticketDir);
  const file = join(ticketDir, 'phase.pid');
  writeFileSync(file, String(tail.pid));
  const before = bootTimeS() - 3600;
  utimesSync(file, before, before);
  const { logger, warnings } = recordingLogger();

  stopRunProcesses(home, { ...run, pid: null }, { logger });

  assert.equal(await exited(tail, 500), false);
  assert.deepEqual(
    warnings.map((w) => [w.fields.pid, w.fields.reason]),
    [[tail.pid, 'the pid file predates this boot']],
  );
});

test('a PID reused since its file was written (the process is younger than the file) is left alone', async (t) => {
  const { home, run, ticketDir } = runningRun(t);
  const later = naming(t, join(ticketDir, 'agent', 'plan.md'));
  await execed(later, ticketDir);
  const file = join(ticketDir, 'gate.pid');
  writeFileSync(file, String(later.pid));
  // Written 30 s ago, or halfway since boot on a machine up for less than a minute.
  const written = Math.max(Date.now() / 1000 - 30, (bootTimeS() + Date.now() / 1000) / 2);
  utimesSync(file, written, written);
  const { logger, warnings } = recordingLogger();

  stopRunProcesses(home, { ...run, pid: null }, { logger });

  assert.equal(await exited(later, 500), false);
  assert.deepEqual(
    warnings.map((w) => [w.fields.pid, w.fields.reason]),
    [[later.pid, 'the process started after the pid file was written']],
  );
});

test("the worker's PID from the database is killed only while it is that run's worker.sh", async (t) => {
  const { home, run, ticketDir } = runningRun(t);
  // Another home's worker, or any worker.sh: the right name, not this run's ticket folder.
  const other = naming(t, '/somewhere/harness/worker.sh', '1', join(home, 'tickets', '1', 'run-10'));
  await execed(other, 'worker.sh');
  const { logger, warnings } = recordingLogger();
  stopRunProcesses(home, { ...run, pid: other.pid }, { logger });
  assert.equal(await exited(other, 500), false);
  assert.equal(warnings.length, 1);

  const worker = naming(t, '/somewhere/harness/worker.sh', '1', ticketDir);
  await execed(worker, ticketDir);
  stopRunProcesses(home, { ...run, pid: worker.pid }, { logger });
  assert.equal(await exited(worker), true, "the run's worker is killed");
});

// Review finding: a worker in its last moments (exited, not yet reaped: a zombie, whose
// command line reads empty) was logged as "not the run's worker", which reads as PID reuse.
test("a worker that has exited and waits to be reaped is nothing to stop, not another program's process", async (t) => {
  const { home, run } = runningRun(t);
  // A child its parent never waits for: a zombie once it exits.
  const parent = spawn('bash', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => parent.kill('SIGKILL'));
  const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
  const zombie = Number(line.toString().trim());
  const deadline = Date.now() + 30_000;
  while (!/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8'))) {
    assert.ok(Date.now() < deadline, 'the child to exit');
    await new Promise((r) => setTimeout(r, 20));
  }
  const { logger, warnings } = recordingLogger();
  stopRunProcesses(home, { ...run, pid: zombie }, { logger });
  assert.deepEqual(warnings, []);
});

test('a run cancelled while no control plane saw its worker stop: the next start stops the worker and ends the run, the cancel standing', async (t) => {
  const { home, config, store, run, ticketDir } = runningRun(t);
  // The worker as the pool starts it (bash harness/worker.sh SLOT TICKET_DIR), still going.
  const worker = spawnGroup(t, process.execPath, ['-e', 'setTimeout(() => {}, 30_000)', '--', join(REPO_ROOT, 'harness', 'worker.sh'), '1', ticketDir]);
  await execed(worker, ticketDir);
  setRunProcess(store, run.id, { pid: worker.pid });
  // `bugbot cancel` with the control plane down (or killed before the worker stopped).
  assert.deepEqual(cancelTicket(store, run.ticket_id, 'cli'), { was: 'running', now: 'failed' });
  const archive = new OutcomeArchive(home);

  const out = reconcile(config, store, recordingLogger().logger, archive);

  assert.equal(await exited(worker), true, 'the worker is stopped: it would have pushed a cancelled fix');
  assert.deepEqual(stoppingRuns(store), []);
  const row = store.stmt('SELECT state, finished_at FROM runs WHERE id = ?').get(run.id) as { state: string; finished_at: string | null };
  assert.equal(row.state, 'cancelled');
  assert.ok(row.finished_at, 'the run is over');
  assert.equal(store.getTicket(run.ticket_id)!.state, 'failed');
  assert.deepEqual([out.requeued, out.failed], [0, 0], 'a cancelled run is not requeued');
  const [archived] = archive.readAll();
  assert.deepEqual([archived?.run_id, archived?.outcome, archived?.state], [run.id, 'failed', 'failed']);
  assert.match(archived!.reason, /cancelled by cli; its worker was stopped when the control plane started/);
  assert.deepEqual(out.finished.map((f) => f.row.run_id), [run.id], 'its reporters are told');
});

test('a run cancelled after it pushed to staging, reconciled at start: the push stands', (t) => {
  const { home, config, store, run, ticketDir } = runningRun(t);
  writeFileSync(
    join(ticketDir, 'outcome.json'),
    JSON.stringify({ state: 'pushed', outcome: 'clean', reason: 'pushed to staging', cost_usd: 0.5, stages: { research: { tokens: 10, tool_calls: 1, cost_usd: 0.5, duration_s: 1 } } }),
  );
  cancelTicket(store, run.ticket_id, 'cli');

  const out = reconcile(config, store, recordingLogger().logger, new OutcomeArchive(home));

  assert.equal(store.getTicket(run.ticket_id)!.state, 'pushed');
  assert.deepEqual(stoppingRuns(store), []);
  assert.equal(out.finished[0]?.row.state, 'pushed');
  assert.match(out.finished[0]!.row.reason, /pushed to staging \(it had pushed before the cancel — cancelled by cli — took effect\)/);
});

test('a cancel after the push to the bot branch stands: the ticket fails, nothing is merged, the branch is named', () => {
  assert.deepEqual(cancelledRunEnd({ state: 'awaiting_approval', reason: 'pushed bot/ticket-4-x for approval' }, 'cancelled by alice', 'bot/ticket-4-x'), {
    state: 'failed',
    reason: 'cancelled by alice (its fix is on bot/ticket-4-x, awaiting approval when the cancel took effect: not merged)',
    overCancel: false,
  });
  assert.deepEqual(cancelledRunEnd({ state: 'pushed', reason: 'pushed to staging' }, 'cancelled by alice', null), {
    state: 'pushed',
    reason: 'pushed to staging (it had pushed before the cancel — cancelled by alice — took effect)',
    overCancel: true,
  });
  for (const outcome of [null, { state: 'failed', reason: 'tests failed' }, { state: 'needs_human', reason: 'conflict' }]) {
    assert.deepEqual(cancelledRunEnd(outcome, 'cancelled by cli', null), { state: 'failed', reason: 'cancelled by cli', overCancel: false });
  }
});

test('bugbot cancel with no control plane up asks the worker one left going to stop (it would push the cancelled fix)', async (t) => {
  const { home, store, run, ticketDir } = runningRun(t);
  const worker = spawnGroup(t, process.execPath, ['-e', 'setTimeout(() => {}, 30_000)', '--', join(REPO_ROOT, 'harness', 'worker.sh'), '1', ticketDir]);
  await execed(worker, ticketDir);
  setRunProcess(store, run.id, { pid: worker.pid });
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'bugbot.js'), '--home', home, 'cancel', String(run.ticket_id), '--by', 'cli'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /running → failed \(its worker, left going by a control plane that is no longer up, was asked to stop/);
  assert.equal(await exited(worker), true, 'the worker is stopped');
});

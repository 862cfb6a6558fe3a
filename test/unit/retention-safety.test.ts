/**
 * Retention must never take what someone still needs, nor lose track of what it left
 * undone: a fix whose pull request waits for its merge keeps its run; a ticket a person
 * claims while a pass is under way keeps what the pass had not removed yet; a branch the
 * pass could not delete (the repository lock held, a crash) is deleted by a later pass;
 * and what it deleted is logged, with the commit that brings it back.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { workspacePaths } from '../../control/dispatcher/workspace.ts';
import { Intake } from '../../control/intake/index.ts';
import { silentLogger, type Logger } from '../../control/log.ts';
import { beginApproval, finishApproval, isRefusal, releaseApproval } from '../../control/queue/approvals.ts';
import { claimNext, finishRun } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { Retention } from '../../control/retention.ts';
import type { TicketState } from '../../control/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { alertEvent, FakeClock, tempDir, testConfig } from '../support/helpers.ts';

/** Log records, for what the sweep says it did. */
function recordingLogger(records: Array<[level: string, msg: string, fields: Record<string, unknown>]>): Logger {
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => void records.push([level, msg, fields]);
  const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger } as unknown as Logger;
  return logger;
}

/** A home with a target repository; `runWith` makes a ticket with one finished run, its folder written and its branch in the repository. */
function setup(t: TestContext, logger: Logger = silentLogger, lockWaitSeconds?: number) {
  const home = tempDir(t);
  const repo = join(home, 'target');
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
  mkdirSync(repo);
  git('init', '-q', '-b', 'main');
  git('-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-q', '--allow-empty', '-m', 'base');
  const clock = new FakeClock();
  const config = testConfig(home, { intake: { settleSeconds: 0 }, retention: { eventsDays: 0, runFoldersDays: 30 }, target: { repo } });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const retention = new Retention({ config, store, logger, lockWaitSeconds });
  const runWith = (name: string, state: TicketState) => {
    intake.accept([alertEvent({ message: `TypeError: Cannot read properties of undefined (reading "${name}")`, title: name, route: `GET /${name}`, sourceEventId: name })]);
    const claim = claimNext(store, 1, null, 600)!;
    const ws = workspacePaths(config, claim.ticket, claim.run);
    const branch = `bot/ticket-${claim.ticket.id}-20261121T10000${claim.run.id}`;
    store.stmt('UPDATE runs SET branch = ? WHERE id = ?').run(branch, claim.run.id);
    git('branch', branch);
    mkdirSync(join(ws.ticketDir, 'agent'), { recursive: true });
    writeFileSync(join(ws.ticketDir, 'push.env'), 'commit=abc\n');
    finishRun(store, claim.run.id, { ticketState: state, outcome: 'clean', reason: name });
    return { ticketId: claim.ticket.id, runId: claim.run.id, dir: ws.ticketDir, branch };
  };
  const branches = () => git('for-each-ref', '--format=%(refname:short)', 'refs/heads/bot/').split('\n').filter(Boolean);
  const marked = (runId: number) => (store.stmt('SELECT folder_removed_at AS at FROM runs WHERE id = ?').get(runId) as { at: string | null }).at !== null;
  return { home, repo, git, clock, config, store, retention, runWith, branches, marked };
}

/** Hold the workers' repository lock (as a worker's fetch does) until `release()`. */
async function holdLock(t: TestContext, repo: string): Promise<{ release: () => void }> {
  const holder = spawn('flock', ['--no-fork', join(repo, '.git', 'bugbot.lock'), 'sh', '-c', 'echo held; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const release = () => {
    if (holder.exitCode === null && holder.signalCode === null) process.kill(holder.pid!, 'SIGKILL');
  };
  t.after(release);
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  return {
    release: () => {
      release();
      holder.stdout.destroy();
    },
  };
}

test("a fix whose pull request waits for its merge keeps its run's folder and branch (closed unmerged, it goes to a person)", async (t) => {
  const { clock, store, retention, runWith, branches } = setup(t);
  const pr = runWith('pr', 'awaiting_approval');
  const claim = beginApproval(store, pr.ticketId, 'alice', 'pr', 900);
  assert.ok(!isRefusal(claim));
  finishApproval(store, claim.approval.id, { status: 'done', message: 'opened', commit: 'abc', prUrl: 'https://github.com/o/r/pull/7' });
  releaseApproval(claim.approval.id);
  assert.equal(store.getTicketRow(pr.ticketId)!.state, 'pushed');
  assert.equal(store.getTicketRow(pr.ticketId)!.pushed_at, null, 'the pull request is open: the fix is not live');
  clock.advance(31 * 86_400);

  assert.equal((await retention.sweep()).runFolders, 0);
  assert.equal(existsSync(pr.dir), true, "the folder of a fix whose pull request is still open");
  assert.deepEqual(branches(), [pr.branch]);

  // Merged (dispatcher/pr-watch.ts): the ticket's fix is live, and its run goes as any other's.
  store.stmt('UPDATE tickets SET pushed_at = ? WHERE id = ?').run(store.nowIso(), pr.ticketId);
  const r = await retention.sweep();
  assert.equal(r.runFolders, 1);
  assert.equal(r.branches, 1);
  assert.equal(existsSync(pr.dir), false);
});

test('a ticket a person claims while a pass is under way keeps what the pass had not removed yet', async (t) => {
  const { clock, store, retention, runWith, branches, marked } = setup(t);
  const first = runWith('first', 'failed');
  const second = runWith('second', 'failed');
  const other = runWith('other', 'failed');
  clock.advance(31 * 86_400);

  // The pass has read its runs and is removing the first folder when the claims come in.
  const sweeping = retention.sweep();
  store.setClaimedBy(first.ticketId, 'alice');
  store.setClaimedBy(second.ticketId, 'bob');
  const r = await sweeping;

  assert.equal(existsSync(second.dir), true, "the folder of a ticket claimed before the pass got to it");
  assert.deepEqual(branches().sort(), [first.branch, second.branch].sort(), 'the claimed tickets keep their branches; the other one goes');
  assert.equal(existsSync(other.dir), false);
  assert.equal(r.branches, 1);
  assert.equal(marked(first.runId) || marked(second.runId), false, 'neither claimed run is marked: released, it expires again');
  // Released: a later pass takes them as for any ticket.
  store.setClaimedBy(first.ticketId, null);
  store.setClaimedBy(second.ticketId, null);
  const later = await retention.sweep();
  assert.equal(later.branches, 2);
  assert.deepEqual(branches(), []);
  assert.equal(marked(first.runId) && marked(second.runId), true);
});

test('a repository lock held for long is not waited on for ever: the branch is left to the next pass, which deletes it', { timeout: 30_000 }, async (t) => {
  const records: Array<[string, string, Record<string, unknown>]> = [];
  const { clock, repo, retention, runWith, branches, marked } = setup(t, recordingLogger(records), 1);
  const run = runWith('locked', 'failed');
  clock.advance(31 * 86_400);
  const lock = await holdLock(t, repo);

  const started = Date.now();
  const r = await retention.sweep();
  assert.ok(Date.now() - started < 10_000, `the sweep gave up on the lock (${Date.now() - started} ms)`);
  assert.equal(r.runFolders, 1);
  assert.equal(r.branches, undefined, 'no branch deleted, none counted');
  assert.deepEqual(branches(), [run.branch]);
  assert.equal(marked(run.runId), false, 'the run stays unmarked: its branch is still to go');
  assert.ok(records.some(([level, msg]) => level === 'warn' && /tried again next pass/.test(msg)));

  lock.release();
  const next = await retention.sweep();
  assert.equal(next.branches, 1);
  assert.deepEqual(branches(), []);
  assert.equal(marked(run.runId), true);
});

test('a sweep killed between removing the folders and deleting the branches leaves the branches to the next pass', { timeout: 60_000 }, async (t) => {
  const { home, repo, clock, retention, runWith, branches, marked } = setup(t);
  const runs = [runWith('a', 'failed'), runWith('b', 'failed')];
  clock.advance(31 * 86_400);
  // The child's sweep gets stuck at the branches (the lock held), and is killed there.
  const lock = await holdLock(t, repo);
  const script = `
    import { Store } from ${JSON.stringify(join(import.meta.dirname, '../../control/queue/store.ts'))};
    import { Retention } from ${JSON.stringify(join(import.meta.dirname, '../../control/retention.ts'))};
    import { silentLogger } from ${JSON.stringify(join(import.meta.dirname, '../../control/log.ts'))};
    import { testConfig } from ${JSON.stringify(join(import.meta.dirname, '../support/helpers.ts'))};
    const [home, repo, now] = process.argv.slice(-3);
    const store = new Store(home + '/bugbot.db', { now: () => new Date(now) });
    const config = testConfig(home, { intake: { settleSeconds: 0 }, retention: { eventsDays: 0, runFoldersDays: 30 }, target: { repo } });
    await new Retention({ config, store, logger: silentLogger }).sweep();
  `;
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, home, repo, clock.now().toISOString()], {
    cwd: join(import.meta.dirname, '../..'),
    env,
    stdio: 'ignore',
    // A group of its own: killed whole, as a crash of the service (systemd stops its cgroup) takes its git too.
    detached: true,
  });
  const kill = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
  };
  t.after(kill);
  for (let i = 0; i < 400 && runs.some((r) => existsSync(r.dir)); i++) await sleep(50);
  assert.equal(runs.some((r) => existsSync(r.dir)), false, "the child removed the runs' folders");
  await sleep(500);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  kill();
  await exited;
  lock.release();
  assert.equal(branches().length, 2, 'the killed sweep deleted no branch');

  const r = await retention.sweep();
  assert.equal(r.branches, 2, 'the next pass deletes them');
  assert.deepEqual(branches(), []);
  assert.equal(runs.every((x) => marked(x.runId)), true);
});

test('each deleted branch is logged with its commit, so a person can bring it back', async (t) => {
  const records: Array<[string, string, Record<string, unknown>]> = [];
  const { git, clock, retention, runWith } = setup(t, recordingLogger(records));
  const run = runWith('logged', 'failed');
  const commit = git('rev-parse', run.branch).trim();
  clock.advance(31 * 86_400);

  assert.equal((await retention.sweep()).branches, 1);

  const logged = records.filter(([level]) => level === 'info').flatMap(([, , f]) => (f.branches as string[] | undefined) ?? []);
  assert.deepEqual(logged, [`${run.branch} ${commit}`]);
});

// Review finding: git follows a `commondir` planted in the base checkout's own .git (the
// agent's sandbox can write there) to the repository it names, hooks and config and all:
// the sweep's `git branch -D` ran that repository's reference-transaction hook, as bugbot's
// user, with the control plane's environment.
test("a commondir planted in the base checkout's .git: the sweep's git never follows it, and the branches wait until it is gone", async (t) => {
  const records: Array<[string, string, Record<string, unknown>]> = [];
  const { home, clock, repo, retention, runWith, marked } = setup(t, recordingLogger(records));
  const run = runWith('planted', 'failed');
  const evil = join(home, 'evil');
  const marker = join(home, 'ran');
  execFileSync('git', ['clone', '-q', '--bare', repo, evil]);
  writeFileSync(join(evil, 'hooks', 'reference-transaction'), `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
  writeFileSync(join(repo, '.git', 'commondir'), `${evil}\n`);
  // The checkout's own branches, read without following the file.
  const own = () => execFileSync('git', ['-C', repo, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/bot/'], { encoding: 'utf8', env: { ...process.env, GIT_COMMON_DIR: join(repo, '.git') } }).split('\n').filter(Boolean);
  clock.advance(31 * 86_400);
  await retention.sweep();
  assert.equal(existsSync(marker), false, "the planted repository's hook never ran");
  assert.deepEqual(own(), [run.branch]);
  assert.equal(marked(run.runId), false, 'left for a later pass');
  assert.ok(records.some(([level, , fields]) => level === 'warn' && /commondir is there/.test(String(fields.error))), JSON.stringify(records));

  rmSync(join(repo, '.git', 'commondir'));
  const next = await retention.sweep();
  assert.equal(next.branches, 1);
  assert.deepEqual(own(), []);
  assert.equal(marked(run.runId), true);
});

/**
 * Retention: events and finished runs' folders go after their days; tickets keep their
 * counts, and the folders people still need (approvals, needs_human, running) stay.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { workspacePaths } from '../../control/dispatcher/workspace.ts';
import { Intake } from '../../control/intake/index.ts';
import { silentLogger } from '../../control/log.ts';
import { claimNext, finishRun } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { Retention } from '../../control/retention.ts';
import type { TicketState } from '../../control/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { alertEvent, FakeClock, tempDir, testConfig } from '../support/helpers.ts';

function setup(t: TestContext, flags: ConfigFile = {}) {
  const home = tempDir(t);
  const clock = new FakeClock();
  // Each ticket here is an error of its own, begun at the same instant (alertEvent's time):
  // no cascade holds one in another's.
  const config = testConfig(home, { intake: { settleSeconds: 0, cascadeSeconds: 0 }, ...flags });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const retention = new Retention({ config, store, logger: silentLogger });
  const count = (sql: string, ...args: unknown[]) => (store.stmt(sql).get(...args) as { n: number }).n;
  return { home, clock, config, store, intake, retention, count };
}

test('events older than retention.eventsDays go, oldest first; their tickets keep the counts', async (t) => {
  const { clock, store, intake, retention, count } = setup(t, { retention: { eventsDays: 30, runFoldersDays: 0 } });
  // 1,200 occurrences of one error 40 days ago (more than one delete chunk), 5 of it today.
  intake.accept(Array.from({ length: 1200 }, () => alertEvent()));
  clock.advance(40 * 86_400);
  intake.accept(Array.from({ length: 5 }, () => alertEvent()));
  const ticketCount = () => count('SELECT count AS n FROM tickets');
  assert.equal(ticketCount(), 1205);

  const r = await retention.sweep();

  assert.deepEqual(r, { events: 1200, runFolders: 0, done: true });
  assert.equal(count('SELECT COUNT(*) AS n FROM events'), 5, "today's events stay");
  assert.equal(ticketCount(), 1205, 'the ticket keeps its count');
  assert.deepEqual(await retention.sweep(), { events: 0, runFolders: 0, done: true }, 'nothing left to do');
  assert.equal(store.occurrences(1, 100).length, 5, "the ticket's occurrences are today's");
});

test('a backlog larger than a slice is worked off slice by slice, nothing past the cut-off touched', async (t) => {
  const { clock, intake, retention, count } = setup(t, { retention: { eventsDays: 2, runFoldersDays: 0 } });
  intake.accept(Array.from({ length: 5000 }, () => alertEvent()));
  clock.advance(3 * 86_400);
  intake.accept(Array.from({ length: 3 }, () => alertEvent()));

  // A slice with no time: one chunk (2,000 events looked at), then it yields.
  const first = await retention.sweep(0);
  assert.deepEqual(first, { events: 2000, runFolders: 0, done: false });
  let total = first.events;
  let slices = 1;
  for (let done = false; !done && slices < 10; slices++) {
    const r = await retention.sweep(0);
    total += r.events;
    done = r.done;
  }
  assert.equal(total, 5000);
  assert.equal(slices, 4, 'three slices of 2,000 events, the last one reaching the end');
  assert.equal(count('SELECT COUNT(*) AS n FROM events'), 3);
});

test('an alert that keeps being re-sent keeps its key: it stays a duplicate, not a new occurrence', async (t) => {
  const { clock, store, intake, retention, count } = setup(t, { retention: { eventsDays: 30, runFoldersDays: 0 } });
  const firing = alertEvent({ sourceEventId: 'fp-1:2026-11-21T10:00:00Z' });
  intake.accept([firing, alertEvent({ sourceEventId: 'once' })]);
  // Alertmanager re-sends a firing alert every few hours, the same key each time.
  for (let day = 1; day <= 40; day++) {
    clock.advance(86_400);
    assert.equal(intake.accept([{ ...firing }])[0]!.status, 'duplicate');
  }
  const before = count('SELECT count AS n FROM tickets');

  await retention.sweep();

  assert.deepEqual(
    store.stmt('SELECT source_event_id AS id FROM events').all().map((r) => (r as { id: string }).id),
    [firing.sourceEventId],
    'the event that stopped coming is gone; the re-sent one stays',
  );
  assert.equal(intake.accept([{ ...firing }])[0]!.status, 'duplicate', 'its next re-send is still a duplicate');
  assert.equal(count('SELECT count AS n FROM tickets'), before, 'and counts nothing');
});

test('rows whose times do not follow their ids (a clock set wrong for a while) do not stop the walk', async (t) => {
  const { clock, store, intake, retention, count } = setup(t, { retention: { eventsDays: 30, runFoldersDays: 0 } });
  intake.accept(Array.from({ length: 2500 }, () => alertEvent()));
  intake.accept(Array.from({ length: 100 }, () => alertEvent()));
  // The first 2,500 were stamped by a clock years ahead: more than a chunk of rows that never qualify.
  store.stmt('UPDATE events SET received_at = ? WHERE id <= 2500').run('2031-01-01T00:00:00.000Z');
  clock.advance(40 * 86_400);

  const r = await retention.sweep();

  assert.deepEqual(r, { events: 100, runFolders: 0, done: true });
  assert.equal(count('SELECT COUNT(*) AS n FROM events'), 2500);
});

test('retention 0 keeps everything for ever', async (t) => {
  const { clock, intake, retention, count } = setup(t, { retention: { eventsDays: 0, runFoldersDays: 0 } });
  intake.accept([alertEvent(), alertEvent()]);
  clock.advance(3650 * 86_400);
  assert.deepEqual(await retention.sweep(), { events: 0, runFolders: 0, done: true });
  assert.equal(count('SELECT COUNT(*) AS n FROM events'), 2);
});

test("finished runs' folders go after retention.runFoldersDays, except where people still need them", async (t) => {
  const { clock, config, store, intake, retention } = setup(t, { retention: { eventsDays: 0, runFoldersDays: 30 } });
  /** One ticket (its own error) with one run, finished as `state` now, its folder written. */
  const runWith = (name: string, state: TicketState | null): string => {
    intake.accept([alertEvent({ message: `TypeError: Cannot read properties of undefined (reading "${name}")`, title: name, route: `GET /${name}` })]);
    const claim = claimNext(store, 1, null, 600)!;
    if (state) finishRun(store, claim.run.id, { ticketState: state, outcome: state === 'pushed' ? 'clean' : 'failed', reason: name });
    const dir = workspacePaths(config, claim.ticket, claim.run).ticketDir;
    mkdirSync(join(dir, 'agent'), { recursive: true });
    writeFileSync(join(dir, 'stage-research.jsonl'), '{}\n');
    return dir;
  };
  const old = { pushed: runWith('pushed', 'pushed'), failed: runWith('failed', 'failed'), approval: runWith('approval', 'awaiting_approval'), human: runWith('human', 'needs_human'), running: runWith('running', null) };
  clock.advance(31 * 86_400);
  const recent = runWith('recent', 'failed');

  const r = await retention.sweep();

  assert.equal(r.runFolders, 2);
  assert.equal(existsSync(old.pushed), false, 'a pushed run 31 days ago');
  assert.equal(existsSync(dirname(old.pushed)), false, 'and its ticket folder, its only run gone');
  assert.equal(existsSync(old.failed), false, 'a failed run 31 days ago');
  for (const [what, dir] of [['awaiting approval (its push.env)', old.approval], ['needs a person', old.human], ['still running', old.running], ['ended today', recent]] as const) {
    assert.equal(existsSync(dir), true, what);
  }
  assert.equal((await retention.sweep()).runFolders, 0, 'what is gone is not counted again');

  // A pass looks only at runs whose folders it has not removed yet: a removed run is
  // marked and never looked at again (a folder made again under its name stays).
  const removed = (store.stmt('SELECT id FROM runs WHERE folder_removed_at IS NOT NULL ORDER BY id').all() as { id: number }[]).length;
  assert.equal(removed, 2, 'the two removed runs are marked; the kept ones are not');
  mkdirSync(old.pushed, { recursive: true });
  assert.equal((await retention.sweep()).runFolders, 0);
  assert.equal(existsSync(old.pushed), true, 'a marked run is not looked at again');
  // A kept run is looked at again: once a person has dealt with its ticket, its folder goes.
  const human = store.stmt("SELECT id FROM tickets WHERE title = 'human'").get() as { id: number };
  store.setState(human.id, 'failed');
  assert.equal((await retention.sweep()).runFolders, 1);
  assert.equal(existsSync(old.human), false, 'the needs_human run, its ticket since failed');
});

test("a claimed ticket's runs keep their folders and branches while a person is on it", async (t) => {
  const { clock, config, store, intake, retention } = setup(t, { retention: { eventsDays: 0, runFoldersDays: 30 } });
  intake.accept([alertEvent({ message: 'TypeError: Cannot read properties of undefined (reading "claimed")', title: 'claimed', route: 'GET /claimed' })]);
  const claim = claimNext(store, 1, null, 600)!;
  finishRun(store, claim.run.id, { ticketState: 'failed', outcome: 'failed', reason: 'max turns' });
  const dir = workspacePaths(config, claim.ticket, claim.run).ticketDir;
  mkdirSync(join(dir, 'agent'), { recursive: true });
  // A person took the failed ticket over, to go on from the run's partial work.
  store.setClaimedBy(claim.ticket.id, 'alice');
  clock.advance(31 * 86_400);

  assert.equal((await retention.sweep()).runFolders, 0);
  assert.equal(existsSync(dir), true, "the claimed ticket's run folder stays");
  // Released: the person is done with it, and retention goes on as for any ticket.
  store.setClaimedBy(claim.ticket.id, null);
  assert.equal((await retention.sweep()).runFolders, 1);
  assert.equal(existsSync(dir), false);
});

test("a run's folder left unwritable is still removed, and one that cannot go stops neither the others nor the events' pruning", async (t) => {
  // Permissions bind a user without root's capabilities (bugbot's own user): the sweep runs
  // in a child that is uid 0 without CAP_DAC_OVERRIDE / CAP_FOWNER (setpriv), so a folder
  // without write permission stops its rm, as it would for any other user.
  assert.equal(process.getuid?.(), 0, 'this test builds a folder its own user cannot remove (chown): run it as root, as CI does');
  const { home, clock, config, store, intake, count } = setup(t, { retention: { eventsDays: 30, runFoldersDays: 30 } });
  const runWith = (name: string): string => {
    intake.accept([alertEvent({ message: `TypeError: Cannot read properties of undefined (reading "${name}")`, title: name, route: `GET /${name}`, sourceEventId: name })]);
    const claim = claimNext(store, 1, null, 600)!;
    finishRun(store, claim.run.id, { ticketState: 'failed', outcome: 'failed', reason: name });
    const dir = workspacePaths(config, claim.ticket, claim.run).ticketDir;
    mkdirSync(join(dir, 'home', 'go', 'pkg', 'mod', 'example.com', 'x@v1'), { recursive: true });
    writeFileSync(join(dir, 'home', 'go', 'pkg', 'mod', 'example.com', 'x@v1', 'go.mod'), 'module x\n');
    return dir;
  };
  // Go's module cache: read-only folders, the run's own.
  const readOnly = runWith('readonly');
  for (const d of ['example.com/x@v1', 'example.com', '']) chmodSync(join(readOnly, 'home', 'go', 'pkg', 'mod', d), 0o555);
  // A folder of another user's, read-only: nothing short of root takes it.
  const stuck = runWith('stuck');
  const foreign = join(stuck, 'home', 'go', 'pkg', 'mod', 'example.com');
  chownSync(foreign, 65534, 65534);
  chmodSync(foreign, 0o555);
  t.after(() => existsSync(foreign) && chmodSync(foreign, 0o755));
  clock.advance(31 * 86_400);
  assert.equal(count('SELECT COUNT(*) AS n FROM events'), 2);

  const script = `
    import { Store } from ${JSON.stringify(join(import.meta.dirname, '../../control/queue/store.ts'))};
    import { Retention } from ${JSON.stringify(join(import.meta.dirname, '../../control/retention.ts'))};
    import { testConfig } from ${JSON.stringify(join(import.meta.dirname, '../support/helpers.ts'))};
    const [home, now] = process.argv.slice(-2);
    const store = new Store(home + '/bugbot.db', { now: () => new Date(now) });
    const warnings = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (msg, f) => warnings.push([msg, f.dir]), child() { return logger; } };
    const config = testConfig(home, { intake: { settleSeconds: 0 }, retention: { eventsDays: 30, runFoldersDays: 30 } });
    const result = await new Retention({ config, store, logger }).sweep();
    store.close();
    console.log(JSON.stringify({ result, warnings }));
  `;
  const out = execFileSync(
    'setpriv',
    ['--bounding-set=-dac_override,-dac_read_search,-fowner', '--', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script, home, clock.now().toISOString()],
    { encoding: 'utf8', cwd: join(import.meta.dirname, '../..') },
  );
  const { result, warnings } = JSON.parse(out.trim().split('\n').at(-1)!) as { result: { events: number; runFolders: number }; warnings: [string, string][] };

  assert.equal(existsSync(readOnly), false, 'the read-only module cache went with its run folder');
  assert.equal(existsSync(stuck), true);
  assert.deepEqual(warnings, [["could not remove an expired run's folder; tried again next pass", stuck]]);
  assert.deepEqual(result, { events: 2, runFolders: 1, done: true }, 'the events were pruned all the same');
  assert.equal(count('SELECT COUNT(*) AS n FROM events'), 0);
});

test('a stop does not wait for the backlog of expired folders (the next pass goes on with it); days past 100 years are refused', async (t) => {
  const { clock, config, store, intake, retention } = setup(t, { retention: { eventsDays: 0, runFoldersDays: 30 } });
  const dirs: string[] = [];
  for (let i = 0; i < 20; i++) {
    intake.accept([alertEvent({ message: `TypeError: Cannot read properties of undefined (reading "f${i}")`, title: `f${i}`, route: `GET /f${i}` })]);
    const claim = claimNext(store, 1, null, 600)!;
    finishRun(store, claim.run.id, { ticketState: 'failed', outcome: 'failed', reason: 'x' });
    const dir = workspacePaths(config, claim.ticket, claim.run).ticketDir;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'stage-research.jsonl'), '{}\n');
    dirs.push(dir);
  }
  clock.advance(31 * 86_400);
  const sweeping = retention.sweep();
  await retention.stop();
  await sweeping;
  const left = dirs.filter((d) => existsSync(d)).length;
  assert.ok(left > 0 && left < 20, `${left} of 20 folders left: the stop came after the first`);
  assert.throws(() => testConfig(tempDir(t), { retention: { runFoldersDays: 1e9 } }), /retention\.runFoldersDays/);
});

// Review finding: every run leaves a local branch in the target repository (its partial
// work), and nothing ever deleted one: a year of runs is thousands of bot/ branches.
test("an expired run's local branch goes with its folder; a kept run's, a checked-out one and other branches stay", async (t) => {
  const repo = join(tempDir(t), 'target');
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
  mkdirSync(repo);
  git('init', '-q', '-b', 'main');
  git('-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-q', '--allow-empty', '-m', 'base');
  const { clock, store, intake, retention } = setup(t, { retention: { eventsDays: 0, runFoldersDays: 30 }, target: { repo } });
  const runWith = (name: string, state: TicketState): string => {
    intake.accept([alertEvent({ message: `TypeError: Cannot read properties of undefined (reading "${name}")`, title: name, route: `GET /${name}` })]);
    const claim = claimNext(store, 1, null, 600)!;
    const branch = `bot/ticket-${claim.ticket.id}-20261121T10000${claim.run.id}`;
    store.stmt('UPDATE runs SET branch = ? WHERE id = ?').run(branch, claim.run.id);
    git('branch', branch);
    finishRun(store, claim.run.id, { ticketState: state, outcome: 'failed', reason: name });
    return branch;
  };
  const failed = runWith('failed', 'failed');
  const pushed = runWith('pushed', 'pushed');
  const approval = runWith('approval', 'awaiting_approval');
  const checkedOut = runWith('checked-out', 'failed');
  git('worktree', 'add', '-q', join(dirname(repo), 'wt'), checkedOut);
  git('branch', 'bot/someone-elses');
  clock.advance(31 * 86_400);
  const recent = runWith('recent', 'failed');

  const r = await retention.sweep();

  assert.equal(r.branches, 2);
  const left = git('for-each-ref', '--format=%(refname:short)', 'refs/heads/').split('\n').filter(Boolean).sort();
  assert.deepEqual(left, [approval, checkedOut, 'bot/someone-elses', recent, 'main'].sort());
  assert.ok(!left.includes(failed) && !left.includes(pushed));
  assert.equal((await retention.sweep()).branches, undefined, 'nothing left to delete');
});

/**
 * Approval mode (issue 6): auto-approval rules, the state guards of approve / skip /
 * requeue, and the store's claim that keeps two approvals from merging one fix twice.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ConfigError, loadConfig, type ConfigFile } from '../../control/config.ts';
import { Approvals, changedFiles } from '../../control/dispatcher/approvals.ts';
import { autoApprovalDecision, globToRegExp, sensitiveFiles, type AutoApproveRules } from '../../control/dispatcher/auto-approve.ts';
import { codeFence, pullRequestBody, pullRequestTitle } from '../../control/dispatcher/pull-request.ts';
import { Intake } from '../../control/intake/index.ts';
import { processGone, processIdentity } from '../../control/process-identity.ts';
import { silentLogger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { recheckRegressions } from '../../control/outcomes/regression.ts';
import { approvalsForTicket, beginApproval, isRefusal } from '../../control/queue/approvals.ts';
import { cancelTicket, claimNext, finishRun, reclaimRuns, stoppingRuns } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor } from '../../lib/redact.ts';
import { createGitTarget, fileTicket, finishAwaiting, pushFixBranch, sneakBehindMovedBase } from '../support/approval.ts';
import { FakeClock, tempDir, testConfig } from '../support/helpers.ts';

const RULES: AutoApproveRules = {
  enabled: true,
  maxFilesChanged: 3,
  maxLinesChanged: 50,
  requireTestsPassed: true,
  maxSeverity: 'medium',
  sensitivePaths: ['**/migrations/**', '*.sql', '**/auth/**', 'package.json', 'infra/**'],
};
const PASSED = { files: '2', insertions: '10', deletions: '4', tests_first_try: 'true', tests_preexisting: '0' };

test('globs: ** spans directories, * stays in one, a name without / matches at any depth', () => {
  assert.ok(globToRegExp('**/migrations/**').test('db/migrations/001_init.sql'));
  assert.ok(globToRegExp('**/migrations/**').test('migrations/002.sql'));
  assert.ok(!globToRegExp('**/migrations/**').test('src/migrationsHelper.ts'));
  assert.ok(globToRegExp('*.sql').test('deep/down/schema.sql'));
  assert.ok(!globToRegExp('*.sql').test('schema.sql.md'));
  assert.ok(globToRegExp('infra/**').test('infra/k8s/deploy.yaml'));
  assert.ok(!globToRegExp('infra/**').test('src/infra/x.ts'), 'a glob with / is anchored at the root');
  assert.ok(globToRegExp('src/*.ts').test('src/a.ts'));
  assert.ok(!globToRegExp('src/*.ts').test('src/deep/a.ts'));
  assert.ok(globToRegExp('package.json').test('services/api/package.json'));
  assert.ok(globToRegExp('**/auth/**').test('src/auth'), 'a directory match covers the directory itself');
  assert.ok(globToRegExp('file?.txt').test('file1.txt') && !globToRegExp('file?.txt').test('file10.txt'));
  assert.ok(globToRegExp('a+b(c).txt').test('a+b(c).txt'), 'regex characters are literal');
  assert.deepEqual(sensitiveFiles(['src/pets.ts', 'db/migrations/003.sql', 'src/auth/login.ts'], RULES.sensitivePaths), [
    'db/migrations/003.sql',
    'src/auth/login.ts',
  ]);
});

test('auto-approval: approves only when every rule holds, and names every rule that does not', () => {
  const ok = autoApprovalDecision({ severity: 'medium' }, PASSED, ['src/pets.ts', 'test/pets.test.ts'], RULES);
  assert.equal(ok.approve, true, ok.reason);
  assert.match(ok.reason, /2 file\(s\), 14 line\(s\), tests passed, severity medium/);

  assert.deepEqual(autoApprovalDecision({ severity: 'low' }, PASSED, ['a.ts'], { ...RULES, enabled: false }), {
    approve: false,
    reason: 'auto-approval is off (approval.autoApprove.enabled)',
  });
  const high = autoApprovalDecision({ severity: 'high' }, PASSED, ['a.ts'], RULES);
  assert.equal(high.approve, false);
  assert.match(high.reason, /severity high is above medium/);

  const big = autoApprovalDecision({ severity: 'low' }, { ...PASSED, insertions: '45', deletions: '6' }, ['a', 'b', 'c', 'd'], RULES);
  assert.equal(big.approve, false);
  assert.match(big.reason, /4 files changed \(at most 3\)/);
  assert.match(big.reason, /51 lines changed \(at most 50\)/);

  const sensitive = autoApprovalDecision({ severity: 'low' }, PASSED, ['src/pets.ts', 'db/migrations/004_add.sql'], RULES);
  assert.equal(sensitive.approve, false);
  assert.match(sensitive.reason, /sensitive paths touched: db\/migrations\/004_add\.sql/);

  const retried = autoApprovalDecision({ severity: 'low' }, { ...PASSED, tests_first_try: 'false' }, ['a.ts'], RULES);
  assert.match(retried.reason, /the first test gate found new failures/);
  const preexisting = autoApprovalDecision({ severity: 'low' }, { ...PASSED, tests_preexisting: '2' }, ['a.ts'], RULES);
  assert.equal(preexisting.approve, false);
  assert.match(preexisting.reason, /2 test\(s\) fail/);
  assert.equal(autoApprovalDecision({ severity: 'low' }, { ...PASSED, tests_preexisting: '2' }, ['a.ts'], { ...RULES, requireTestsPassed: false }).approve, true);

  // A binary file's lines cannot be counted (git says "-"): not within any line limit.
  const binary = autoApprovalDecision({ severity: 'low' }, { ...PASSED, insertions: '0', deletions: '0', binary: '1' }, ['logo.png'], RULES);
  assert.equal(binary.approve, false);
  assert.match(binary.reason, /1 binary file\(s\) changed/);

  const unknown = autoApprovalDecision({ severity: 'low' }, {}, [], RULES);
  assert.equal(unknown.approve, false);
  assert.match(unknown.reason, /changed files are unknown/);
  assert.match(unknown.reason, /diff size is unknown/);
});

function setup(t: TestContext, flags: ConfigFile = {}) {
  const home = tempDir(t);
  const clock = new FakeClock(Date.now());
  const config = testConfig(home, { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' }, ...flags });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const archive = new OutcomeArchive(home);
  const approvals = new Approvals({ config, store, logger: silentLogger, archive });
  return { home, clock, config, store, intake, archive, approvals };
}

test('approve, skip and requeue refuse states that do not allow them, and say which state it is', async (t) => {
  const { store, intake, approvals } = setup(t);
  const id = fileTicket(intake, 'Pets list is empty', 'Error: pets list came back empty');
  assert.equal(store.getTicket(id)!.state, 'queued');

  const a = await approvals.approve(id, 'alice');
  assert.equal(a.ok, false);
  assert.equal(a.failure, 'state');
  assert.equal(a.state, 'queued');
  assert.match(a.message, /ticket \d+ is queued: only a ticket that is awaiting_approval can be approved/);
  assert.match(approvals.skip(id, 'alice').message, /is queued: only a ticket that is awaiting_approval or needs_human can be skipped/);
  assert.match(approvals.requeue(id, 'alice').message, /is queued: only a ticket that is awaiting_approval or needs_human or failed or dropped can be requeued/);
  assert.equal(store.getTicket(id)!.state, 'queued', 'nothing changed');

  const missing = await approvals.approve(999, 'alice');
  assert.equal(missing.failure, 'not_found');
  assert.match(missing.message, /no ticket 999/);

  // A running ticket (a worker on it) cannot be requeued or skipped either.
  claimNext(store, 1, null, 60);
  assert.equal(approvals.requeue(id, 'alice').failure, 'state');
  assert.equal(approvalsForTicket(store, id).length, 0, 'refusals write no decision');
});

test('skip drops a fix awaiting approval, with the reason in the history and a new outcome revision', (t) => {
  const { store, intake, config, archive, approvals } = setup(t);
  const id = fileTicket(intake, 'Checkout total off by one', 'Error: total mismatch');
  const fix = finishAwaiting({ store, config, archive, ticketId: id });
  const r = approvals.skip(id, 'bob', 'fixed by hand in #42');
  assert.equal(r.ok, true, r.message);
  assert.equal(r.state, 'dropped');
  assert.equal(store.getTicket(id)!.state, 'dropped');
  const audit = store.auditTrail(id).at(-1)!;
  assert.deepEqual([audit.actor, audit.action, audit.detail], ['bob', 'skipped', 'was awaiting_approval: fixed by hand in #42']);
  const rows = approvalsForTicket(store, id);
  assert.deepEqual(rows.map((x) => [x.action, x.status, x.actor, x.run_id]), [['skip', 'done', 'bob', fix.run.id]]);
  const latest = archive.latest().find((x) => x.run_id === fix.run.id)!;
  assert.equal(latest.revision, 2);
  assert.equal(latest.state, 'dropped');
  assert.match(latest.reason, /skipped by bob: fixed by hand in #42/);
  // A fix turned down never shipped: neither a clean fix nor a time to push in the report.
  assert.equal(latest.outcome, 'failed');
  assert.equal(latest.trigger_to_push_s, null);
  // Skipping again: the state no longer allows it.
  assert.equal(approvals.skip(id, 'bob').failure, 'state');
});

// Review finding: a requeued fix wrote no outcome revision: its run stayed a clean fix
// waiting for approval in the rates and in the cost per clean fix for good.
test('requeue of a fix awaiting approval gives its run an outcome revision: not a clean fix, no time to push', (t) => {
  const { store, intake, config, archive, approvals } = setup(t);
  const id = fileTicket(intake, 'Refund rounds wrong', 'Error: refund mismatch');
  const fix = finishAwaiting({ store, config, archive, ticketId: id });
  assert.equal(archive.latest().find((x) => x.run_id === fix.run.id)!.outcome, 'clean');
  assert.equal(approvals.requeue(id, 'bob').ok, true);
  const latest = archive.latest().find((x) => x.run_id === fix.run.id)!;
  assert.deepEqual([latest.revision, latest.state, latest.outcome, latest.trigger_to_push_s], [2, 'queued', 'failed', null]);
  assert.match(latest.reason, /requeued by bob for another run$/);
});

test('requeue sends awaiting_approval, needs_human and failed tickets back to the queue with attempts reset', (t) => {
  const { store, intake, config, approvals } = setup(t);
  const a = fileTicket(intake, 'A', 'Error: first distinct failure');
  finishAwaiting({ store, config, ticketId: a });
  const b = fileTicket(intake, 'B', 'Error: second distinct failure');
  const claimB = claimNext(store, 1, null, 60)!;
  finishRun(store, claimB.run.id, { ticketState: 'failed', outcome: 'failed', reason: 'tests failed' });
  assert.equal(store.getTicket(b)!.attempt, 1);

  for (const id of [a, b]) {
    const r = approvals.requeue(id, 'carol');
    assert.equal(r.ok, true, r.message);
    assert.equal(r.state, 'queued');
    const t2 = store.getTicket(id)!;
    assert.equal(t2.state, 'queued');
    assert.equal(t2.attempt, 0);
    assert.equal(store.auditTrail(id).at(-1)!.action, 'requeued');
  }
  // And the queue takes it again, as attempt 1.
  const again = claimNext(store, 1, null, 60)!;
  assert.equal(again.run.attempt, 1);
});

test('one approval at a time: a second one, a skip or a requeue is refused while it runs; a stale one is taken over', (t) => {
  const { store, intake, config, clock, approvals } = setup(t);
  const id = fileTicket(intake, 'Slow page', 'Error: slow page');
  finishAwaiting({ store, config, ticketId: id });
  const first = beginApproval(store, id, 'alice', 'staging', 900);
  assert.ok(!isRefusal(first));
  const second = beginApproval(store, id, 'bob', 'staging', 900);
  assert.ok(isRefusal(second));
  assert.equal(second.failure, 'busy');
  assert.match(second.message, /being approved by alice/);
  assert.equal(approvals.skip(id, 'bob').failure, 'busy');
  assert.equal(approvals.requeue(id, 'bob').failure, 'busy');
  // The unique index holds even against a direct second insert.
  assert.throws(() =>
    store.stmt(`INSERT INTO approvals (ticket_id, actor, action, status, started_at) VALUES (?, 'x', 'approve', 'running', ?)`).run(id, store.nowIso()),
  );

  // An approver whose process cannot be told (another host's): given up by time only.
  store.stmt(`UPDATE approvals SET owner = 'another-host/boot/4026531836/4242/123' WHERE ticket_id = ?`).run(id);
  clock.advance(899);
  assert.ok(isRefusal(beginApproval(store, id, 'bob', 'staging', 900)), 'not yet');
  clock.advance(2);
  const third = beginApproval(store, id, 'bob', 'staging', 900);
  assert.ok(!isRefusal(third), 'the approver that died no longer blocks the ticket');
  const rows = approvalsForTicket(store, id);
  assert.deepEqual(rows.map((r) => [r.actor, r.status]), [['alice', 'abandoned'], ['bob', 'running']]);
  assert.ok(store.auditTrail(id).some((a) => a.action === 'approval-abandoned'));
});

// Review finding (clock jumps): an approval was given up after 900 s however alive its
// process was; the wall clock stepped an hour forward during a merge let the next approve
// stop that merge and start a second one beside it.
test('an approval whose process provably still runs is never given up by time', (t) => {
  const { store, intake, config, clock } = setup(t);
  const id = fileTicket(intake, 'Slow page', 'Error: slow page');
  finishAwaiting({ store, config, ticketId: id });
  assert.ok(!isRefusal(beginApproval(store, id, 'alice', 'staging', 900)));
  assert.equal(approvalsForTicket(store, id)[0]!.owner, processIdentity(), 'this process holds it');
  clock.advance(3600);
  const again = beginApproval(store, id, 'bob', 'staging', 900);
  assert.ok(isRefusal(again));
  assert.match(again.message, /being approved by alice/);
});

// Review finding (day 1, fb2717f): an approval of the server's own process that nothing
// finishes (recording its result failed: a full disk) was never given up, the server
// being alive: its ticket could be neither approved, skipped nor requeued until a restart
// (before, 900 s). And approve()'s own bookkeeping left that failure's rejection unhandled,
// which ends the control plane.
test("an approval this process no longer works on is given up, alive as the process is", async (t) => {
  const { store, intake, config, approvals, clock } = setup(t, { target: { repo: 'no-such-repo' } });
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => void unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  const id = fileTicket(intake, 'Broken', 'Error: broken thing');
  finishAwaiting({ store, config, ticketId: id });
  // The write that records the merge's result fails, as on a full disk.
  store.db.exec(`CREATE TEMP TRIGGER full BEFORE UPDATE ON approvals BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END`);
  await assert.rejects(approvals.approve(id, 'alice'), /disk is full/);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(unhandled, [], 'no rejection left unhandled');
  store.db.exec('DROP TRIGGER temp.full');
  assert.deepEqual(approvalsForTicket(store, id).map((x) => x.status), ['running'], 'left claimed');
  clock.advance(3600);
  const again = await approvals.approve(id, 'bob');
  assert.equal(again.failure, 'error', `not busy: ${again.message}`);
  assert.deepEqual(approvalsForTicket(store, id).map((x) => x.status), ['abandoned', 'failed']);
});

/** The identity of a process that ran and is gone (killed outright). */
async function goneProcess(): Promise<{ pid: number; identity: string }> {
  const p = spawn('sleep', ['30']);
  const identity = processIdentity(p.pid!)!;
  p.kill('SIGKILL');
  await new Promise((r) => p.once('exit', r));
  return { pid: p.pid!, identity };
}

test('an approval whose process is gone is given up at once, by whoever comes next (the CLI with no server up included)', async (t) => {
  const { store, intake, config, approvals } = setup(t);
  const id = fileTicket(intake, 'Slow page', 'Error: slow page');
  finishAwaiting({ store, config, ticketId: id });
  const first = beginApproval(store, id, 'alice', 'staging', 900);
  assert.ok(!isRefusal(first));
  assert.equal(first.approval.owner, processIdentity(), 'the approving process is recorded');
  const second = beginApproval(store, id, 'bob', 'staging', 900);
  assert.ok(isRefusal(second) && second.failure === 'busy', 'its process runs: it may still finish');

  // Alice's approving process dies mid-merge (killed outright: nothing recorded its end).
  const dead = await goneProcess();
  store.stmt('UPDATE approvals SET owner = ? WHERE id = ?').run(dead.identity, first.approval.id);
  assert.equal(approvals.skip(id, 'bob').ok, true, 'not busy, with no 15 minutes to wait');
  const [given] = approvalsForTicket(store, id);
  assert.equal(given!.status, 'abandoned');
  assert.match(given!.message!, new RegExp(`^the approving process \\(pid ${dead.pid}\\) stopped before it finished`));
});

test('the merge a gone approver left running is stopped before anyone acts on its ticket (it would push a skipped fix)', async (t) => {
  const { store, intake, config, approvals } = setup(t);
  const id = fileTicket(intake, 'Slow page', 'Error: slow page');
  finishAwaiting({ store, config, ticketId: id });
  const first = beginApproval(store, id, 'alice', 'staging', 900);
  assert.ok(!isRefusal(first));
  // What a control plane killed mid-merge leaves: merge.sh in a process group of its own,
  // its pid in the approval's folder, and an owner that is gone.
  const workDir = join(config.home, 'approvals', `ticket-${id}-${first.approval.id}`);
  mkdirSync(workDir, { recursive: true });
  const merge = spawn('bash', ['-c', 'sleep 60; true', 'merge.sh', workDir], { detached: true, stdio: 'ignore' });
  t.after(() => {
    if (merge.exitCode === null && merge.signalCode === null) process.kill(-merge.pid!, 'SIGKILL');
  });
  writeFileSync(join(workDir, 'merge.pid'), String(merge.pid));
  store.stmt('UPDATE approvals SET owner = ? WHERE id = ?').run((await goneProcess()).identity, first.approval.id);
  const exited = new Promise((r) => merge.once('exit', r));
  assert.equal(approvals.skip(id, 'bob').ok, true);
  assert.equal(await Promise.race([exited.then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still running'), 5000))]), 'stopped');
});

test('process identity: provably gone only for this host, this boot, this PID namespace, and a process that is not running any more', async () => {
  const me = processIdentity()!;
  assert.match(me, new RegExp(`^${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[0-9a-f-]{36}/\\d+/${process.pid}/\\d+$`));
  assert.equal(processGone(me), false);
  const [host, boot, ns, pid, start] = me.split('/') as [string, string, string, string, string];
  assert.equal(processGone(`${host}/${boot}/${ns}/${pid}/${Number(start) + 1}`), true, 'another process under the same PID (reused)');
  assert.equal(processGone(`${host}/${boot}/${ns}/${2 ** 22 + 12345}/${start}`), true, 'no such process');
  assert.equal(processGone(`${host}/00000000-0000-0000-0000-000000000000/${ns}/${pid}/${start}`), true, 'a process of an earlier boot');
  assert.equal(processGone(`another-host/${boot}/${ns}/${pid}/${Number(start) + 1}`), false, "another machine's: this one cannot tell");
  assert.equal(processGone(`${host}/${boot}/1/${pid}/${Number(start) + 1}`), false, "another PID namespace's (a container's): this one cannot tell");
  assert.equal(processGone('garbage'), false);
  assert.equal(processIdentity(2 ** 22 + 12345), null, 'no such process: no identity');
});

test("an approval names the run whose fix was looked at: refused once the ticket's fix is another run's", async (t) => {
  const { store, intake, config, approvals } = setup(t);
  const id = fileTicket(intake, 'Slow page', 'Error: slow page');
  const { run } = finishAwaiting({ store, config, ticketId: id });
  // A run the ticket never had (a typo in --run) is said to be so, not taken for an earlier one.
  const stale = await approvals.approve(id, 'alice', { run: run.id + 1 });
  assert.equal(stale.ok, false);
  assert.equal(stale.failure, 'state');
  assert.match(stale.message, new RegExp(`^ticket ${id} has no run ${run.id + 1} \\(the fix waiting for approval is run ${run.id}'s\\)$`));
  assert.equal(store.getTicket(id)!.state, 'awaiting_approval', 'nothing merged');
  assert.deepEqual(approvalsForTicket(store, id), [], 'nothing started');
  // An earlier run's fix (the ticket was requeued and ran again since).
  assert.equal(approvals.requeue(id, 'alice').ok, true);
  const second = finishAwaiting({ store, config, ticketId: id });
  const earlier = await approvals.approve(id, 'alice', { run: run.id });
  assert.match(earlier.message, new RegExp(`fix is run ${second.run.id}'s now, not run ${run.id}'s that was approved`));
  const claim = beginApproval(store, id, 'alice', 'staging', 900, second.run.id);
  assert.ok(!isRefusal(claim), 'the run looked at is the fix: it goes ahead');
});

// Review finding: Skip on an earlier run's Slack request (the ticket requeued and run again
// since) dropped the newer fix; only Approve checked the run.
test("a skip naming an earlier run is refused: the ticket's newer fix stays", (t) => {
  const { store, intake, config, approvals } = setup(t);
  const id = fileTicket(intake, 'Cart badge wrong', 'Error: cart badge count');
  const first = finishAwaiting({ store, config, ticketId: id });
  assert.equal(approvals.requeue(id, 'alice').ok, true);
  const second = finishAwaiting({ store, config, ticketId: id });
  assert.ok(second.run.id > first.run.id);
  const stale = approvals.skip(id, 'bob', 'from the old message', { run: first.run.id });
  assert.equal(stale.ok, false);
  assert.equal(stale.failure, 'state');
  assert.match(approvals.skip(id, 'bob', undefined, { run: second.run.id + 100 }).message, new RegExp(`^ticket ${id} has no run ${second.run.id + 100} \\(its latest run is run ${second.run.id}\\)$`));
  assert.match(stale.message, new RegExp(`latest run is run ${second.run.id}, not run ${first.run.id} that was skipped`));
  assert.equal(store.getTicket(id)!.state, 'awaiting_approval', 'the newer fix still waits');
  const r = approvals.skip(id, 'bob', 'looked at it', { run: second.run.id });
  assert.equal(r.ok, true, r.message);
  assert.equal(store.getTicket(id)!.state, 'dropped');
});

test('a merge that fails leaves the ticket awaiting approval and releases the claim', async (t) => {
  // target.repo is not a git repository: merge.sh cannot fetch the branch.
  const { store, intake, config, approvals, home } = setup(t, { target: { repo: 'no-such-repo' } });
  const id = fileTicket(intake, 'Broken', 'Error: broken thing');
  finishAwaiting({ store, config, ticketId: id });
  const r = await approvals.approve(id, 'alice');
  assert.equal(r.ok, false);
  assert.equal(r.failure, 'error');
  assert.equal(r.state, 'awaiting_approval');
  assert.match(r.message, /could not merge bot\/ticket-\d+-\d{8}T\d{6} into staging: merge: .*no-such-repo does not exist/);
  assert.equal(store.getTicket(id)!.state, 'awaiting_approval');
  assert.deepEqual(approvalsForTicket(store, id).map((x) => x.status), ['failed']);
  assert.equal(store.auditTrail(id).at(-1)!.action, 'approval-failed');
  assert.equal(existsSync(join(home, 'approvals', `ticket-${id}-1`)), false, 'the scratch folder is removed');
  const again = await approvals.approve(id, 'alice');
  assert.equal(again.failure, 'error', 'not busy: the failed approval released its claim');
});

test('close() waits for an approval under way to be recorded, then refuses new ones', async (t) => {
  const { store, intake, config, approvals } = setup(t, { target: { repo: 'no-such-repo' } });
  const id = fileTicket(intake, 'Broken', 'Error: broken thing');
  finishAwaiting({ store, config, ticketId: id });
  const pending = approvals.approve(id, 'alice');
  assert.deepEqual(approvalsForTicket(store, id).map((x) => x.status), ['running'], 'the approval is under way');
  await approvals.close();
  assert.deepEqual(approvalsForTicket(store, id).map((x) => x.status), ['failed'], 'recorded before close() returned');
  assert.equal((await pending).failure, 'error');
  const late = await approvals.approve(id, 'bob');
  assert.equal(late.ok, false);
  assert.equal(late.failure, 'busy');
  assert.match(late.message, /shutting down/);
  assert.deepEqual(approvalsForTicket(store, id).map((x) => x.status), ['failed'], 'nothing started after close()');
});

test('auto-approval is a no-op when the rules are off; declined decisions are audited with the reason', async (t) => {
  const off = setup(t);
  const id = fileTicket(off.intake, 'X', 'Error: x');
  finishAwaiting({ store: off.store, config: off.config, ticketId: id });
  assert.equal(await off.approvals.considerAutoApproval(id), null);
  assert.ok(!off.store.auditTrail(id).some((a) => a.actor === 'auto-approve'));

  const on = setup(t, { approval: { autoApprove: { enabled: true } } });
  const id2 = fileTicket(on.intake, 'Y', 'Error: y is broken', 'critical');
  finishAwaiting({ store: on.store, config: on.config, ticketId: id2 });
  assert.equal(await on.approvals.considerAutoApproval(id2), null);
  const last = on.store.auditTrail(id2).at(-1)!;
  assert.equal(last.action, 'auto-approval-declined');
  assert.match(last.detail!, /severity critical is above medium/);
  assert.equal(on.store.getTicket(id2)!.state, 'awaiting_approval');
});

/** Auto-approval on, and a small low-severity fix waiting on its bot branch in a real origin; staging's head before any merge. */
function smallFixAwaiting(t: TestContext) {
  const s = setup(t, { approval: { autoApprove: { enabled: true } } });
  const target = createGitTarget(tempDir(t));
  s.config.target.repo = target.repo;
  const id = fileTicket(s.intake, 'Greeting says hello', 'Error: greeting says hello', 'low');
  finishAwaiting({ store: s.store, config: s.config, ticketId: id }, (branch) => pushFixBranch(target, branch, 'greeting.txt', 'hello, fixed\n'));
  return { s, target, id, staging: target.originGit('rev-parse', 'staging') };
}

// Review finding: a person's claim (`bugbot claim`: "the bot keeps off it") made while the
// run was under way was noted and nothing more: the fix it ended with was then merged by
// the auto-approval rules, without the person who had taken the ticket.
test('auto-approval leaves a ticket a person claimed to that person', async (t) => {
  assert.match(autoApprovalDecision({ severity: 'low', claimedBy: 'dana' }, PASSED, ['a.ts'], RULES).reason, /^claimed by dana: a person decides$/);
  const { s, target, id, staging } = smallFixAwaiting(t);
  s.intake.claim(id, 'dana');
  assert.equal(await s.approvals.considerAutoApproval(id), null);
  const last = s.store.auditTrail(id).at(-1)!;
  assert.deepEqual([last.actor, last.action], ['auto-approve', 'auto-approval-declined']);
  assert.match(last.detail!, /claimed by dana: a person decides/);
  assert.equal(s.store.getTicket(id)!.state, 'awaiting_approval');
  assert.equal(target.originGit('rev-parse', 'staging'), staging, 'nothing merged');
  // Released, the rules decide as for any other fix.
  s.intake.claim(id, 'dana', { release: true });
  const r = await s.approvals.considerAutoApproval(id);
  assert.equal(r?.ok, true, r?.message);
  assert.notEqual(target.originGit('rev-parse', 'staging'), staging);
});

test('auto-approval sees changed files by their exact names, not as git quotes them', async (t) => {
  const target = createGitTarget(tempDir(t));
  const { config } = setup(t, { target: { repo: target.repo } });
  target.git('checkout', '--quiet', '-b', 'fix');
  mkdirSync(join(target.repo, 'infra'));
  mkdirSync(join(target.repo, 'src'));
  // Regression: `git diff --name-only` printed "infra/d\303\251.yaml" in quotes
  // (core.quotePath), which the root-anchored glob infra/** did not match.
  writeFileSync(join(target.repo, 'infra', 'dé.yaml'), 'replicas: 0\n');
  writeFileSync(join(target.repo, 'src', 'a b.ts'), 'export {};\n');
  target.git('add', '-A');
  target.git('commit', '--quiet', '-m', 'fix');
  const files = await changedFiles(config, target.git('rev-parse', 'HEAD'));
  assert.deepEqual(files, ['infra/dé.yaml', 'src/a b.ts']);
  const decision = autoApprovalDecision({ severity: 'low' }, PASSED, files, RULES);
  assert.equal(decision.approve, false);
  assert.match(decision.reason, /sensitive paths touched: infra\/dé\.yaml/);

  // A name with a newline: unknown files (a person looks), not pieces a glob might miss.
  writeFileSync(join(target.repo, 'src', 'x\ny.ts'), 'export {};\n');
  target.git('add', '-A');
  target.git('commit', '--quiet', '-m', 'newline');
  assert.deepEqual(await changedFiles(config, target.git('rev-parse', 'HEAD')), []);
});

// Review finding: auto-approval measured the fix from refs/remotes/origin/main, which the
// agent's sandbox can move onto its own commit: a sensitive file added there was hidden.
test("auto-approval measures the fix from the run's recorded first commit, not a ref the agent could move", async (t) => {
  const target = createGitTarget(tempDir(t));
  const { config } = setup(t, { target: { repo: target.repo } });
  // The agent moves the remote-tracking ref onto its own commit, then the fix follows.
  const { base, head } = sneakBehindMovedBase(target, 'fix');
  assert.deepEqual(await changedFiles(config, head), ['greeting.txt'], 'from the moved ref, the sensitive file is hidden');
  const files = await changedFiles(config, head, base);
  assert.deepEqual(files, ['greeting.txt', 'infra/deploy.yaml']);
  assert.match(autoApprovalDecision({ severity: 'low' }, PASSED, files, RULES).reason, /sensitive paths touched: infra\/deploy\.yaml/);
});

test('pull request title and body: the ticket, plan, verdict and tests; untrusted text fenced so it cannot close its block', (t) => {
  const { store, intake, config } = setup(t);
  const id = fileTicket(intake, 'Login\nbroken @everyone', 'Error: ```` closes? @admin see https://evil.example');
  const fix = finishAwaiting({ store, config, ticketId: id });
  const ticket = store.getTicket(id)!;
  assert.equal(pullRequestTitle(ticket), `bugbot: Login broken @everyone (#${id})`);
  const body = pullRequestBody(ticket, fix.ticketDir, { tests_first_try: 'true', tests_preexisting: '0', files: '1', insertions: '1', deletions: '1', commit: 'abc' }, fix.branch);
  assert.match(body, /## Plan\n\n```markdown\n# Plan\n\nRoot cause: greeting\(\) returns the wrong word\./);
  assert.match(body, /Verdict: approved, 0 edit\(s\) by the review/);
  assert.match(body, /- the test covers the bug/);
  assert.match(body, /- first test gate without new failures: true/);
  assert.match(body, /- tests: 12 passed, 0 failed/);
  // The report sits in a five-backtick fence: its own four backticks cannot end it.
  const m = /### Report \(untrusted text, as received\)\n\n(`{5})text\n([\s\S]*?)\n\1\n/.exec(body);
  assert.ok(m, body);
  assert.match(m[2]!, /@admin see https:\/\/evil\.example/);
  assert.equal(codeFence('plain'), '```text\nplain\n```');
});

test('pull request body: what the agent wrote is redacted, and its verdict can only be a known word', (t) => {
  const { store, intake, config } = setup(t);
  const id = fileTicket(intake, 'Login broken', 'Error: login fails');
  const fix = finishAwaiting({ store, config, ticketId: id });
  const agent = join(fix.ticketDir, 'agent');
  writeFileSync(join(agent, 'plan.md'), '# Plan\n\nThe log shows password=hunter2-secret and key AKIAIOSFODNN7EXAMPLE.\n');
  writeFileSync(join(agent, 'verdict.json'), JSON.stringify({ verdict: 'approved. Fixes #1 @org/team', reasons: ['token=ghp_abcdefghijklmnopqrstuvwxyz0123456789'], edits: '3 [click](https://evil.example)' }));
  const redactor = createRedactor({ salt: 'test' });
  const body = pullRequestBody(store.getTicket(id)!, fix.ticketDir, {}, fix.branch, (text) => redactor.text(text));
  assert.doesNotMatch(body, /hunter2-secret|AKIAIOSFODNN7EXAMPLE|ghp_abcdefghij/);
  assert.match(body, /\nVerdict: unknown\n/);
  assert.doesNotMatch(body, /Fixes #1|@org\/team|evil\.example/);
});

test('config: approval defaults, and target "pr" needs the repository', (t) => {
  const dir = tempDir(t);
  const cfg = loadConfig({ cwd: dir, env: {} });
  assert.equal(cfg.approval.target, 'staging');
  assert.equal(cfg.approval.github.apiUrl, 'https://api.github.com');
  assert.equal(cfg.approval.github.tokenEnv, 'GITHUB_TOKEN');
  assert.equal(cfg.approval.autoApprove.enabled, false);
  assert.equal(cfg.approval.autoApprove.maxSeverity, 'medium');
  assert.throws(
    () => loadConfig({ cwd: dir, env: {}, flags: { approval: { target: 'pr', github: { owner: 'acme' } } } }),
    (err: unknown) => err instanceof ConfigError && err.problems.some((p) => /approval\.github\.owner and approval\.github\.repo/.test(p)),
  );
  const gh = loadConfig({ cwd: dir, env: { GH_PAT: 'x' }, flags: { approval: { target: 'pr', github: { owner: 'acme', repo: 'shop', tokenEnv: 'GH_PAT' } } } });
  assert.equal(gh.secrets.get(gh.approval.github.tokenEnv), 'x', 'the token variable is one the config names');
});

test('the 24-hour regression check skips fixes still awaiting approval and counts an approved one from its approval', (t) => {
  const { store, intake, config, archive, clock } = setup(t);
  const id = fileTicket(intake, 'Waiting', 'Error: waiting fix');
  const fix = finishAwaiting({ store, config, archive, ticketId: id });
  clock.advance(2 * 86_400);
  assert.deepEqual(recheckRegressions(store, archive, clock.now()), [], 'not live yet: nothing to check');
  // Approved now (appended by hand: this test has no git target).
  const prev = archive.latest().find((r) => r.run_id === fix.run.id)!;
  archive.append({ ...prev, state: 'pushed', pushed_to: 'staging', approved_at: clock.now().toISOString(), approved_by: 'alice', revision: 2 });
  clock.advance(3600);
  assert.deepEqual(recheckRegressions(store, archive, clock.now()), [], 'an hour after the approval');
  clock.advance(86_400);
  const [row] = recheckRegressions(store, archive, clock.now());
  assert.equal(row?.revision, 3);
  assert.equal(row?.regressions_detected_24h, false);
});

test('requeue refuses a failed ticket whose error a newer open ticket carries on: one open ticket per error', (t) => {
  const { store, intake, approvals } = setup(t);
  const first = fileTicket(intake, 'Checkout', 'Error: checkout total is NaN');
  const claim = claimNext(store, 1, null, 60)!;
  finishRun(store, claim.run.id, { ticketState: 'failed', outcome: 'failed', reason: 'tests failed' });
  // A person reports the same error again: a new ticket, since the first one failed.
  const second = fileTicket(intake, 'Checkout', 'Error: checkout total is NaN');
  assert.notEqual(second, first);
  assert.equal(store.getTicket(second)!.fingerprint, store.getTicket(first)!.fingerprint);
  const r = approvals.requeue(first, 'carol');
  assert.equal(r.ok, false);
  assert.match(r.message, new RegExp(`ticket ${second} \\(the same error, filed later\\) is open`));
  assert.equal(store.getTicket(first)!.state, 'failed');
});

test('a cancelled run whose worker has not been seen to stop keeps its ticket from running again: requeue waits for it', (t) => {
  const { store, intake, approvals } = setup(t);
  const id = fileTicket(intake, 'Cancelled mid-run', 'Error: cancelled while its worker ran');
  const { run } = claimNext(store, 1, null, 60)!;
  assert.deepEqual(cancelTicket(store, id, 'cli'), { was: 'running', now: 'failed' });
  // The worker is still cleaning up (or no control plane is up to stop it): a second run
  // now would put two workers on one ticket.
  const early = approvals.requeue(id, 'carol');
  assert.equal(early.failure, 'busy');
  assert.match(early.message, new RegExp(`^ticket ${id}'s cancelled worker \\(run ${run.id}\\) is still stopping: try again in a few seconds`));
  assert.equal(store.getTicket(id)!.state, 'failed');
  assert.deepEqual(stoppingRuns(store).map((r) => r.id), [run.id]);
  // Its end, recorded: the cancel stands, the run is over, and the ticket may go again.
  finishRun(store, run.id, { ticketState: 'failed', outcome: 'failed', reason: 'cancelled by cli' });
  assert.deepEqual(stoppingRuns(store), []);
  const row = store.stmt('SELECT state, finished_at FROM runs WHERE id = ?').get(run.id) as { state: string; finished_at: string | null };
  assert.equal(row.state, 'cancelled');
  assert.ok(row.finished_at);
  assert.equal(store.getTicket(id)!.state, 'failed');
  assert.equal(approvals.requeue(id, 'carol').ok, true);
});

test('a cancel typed for the wrong ticket is undone by a requeue: a dropped ticket may run again', (t) => {
  const { store, intake, approvals } = setup(t);
  const id = fileTicket(intake, 'Dropped by mistake', 'Error: a real bug cancelled by a typo');
  assert.deepEqual(cancelTicket(store, id, 'cli'), { was: 'queued', now: 'dropped' });
  const r = approvals.requeue(id, 'carol');
  assert.equal(r.ok, true, r.message);
  const t2 = store.getTicket(id)!;
  assert.equal(t2.state, 'queued');
  // The brief and a later pass of triage see a person's decision, not the drop's reason.
  assert.equal(t2.classification, 'bug');
  assert.match(t2.triageReason ?? '', /^requeued by carol: a person asked for a run \(it was dropped/);
  assert.equal(claimNext(store, 1, null, 60)?.ticket.id, id);
});

test('a dropped ticket gives way to any newer ticket of its error, open or not: requeue that one', (t) => {
  const { store, intake, approvals } = setup(t);
  const old = fileTicket(intake, 'Export fails', 'Error: export failed for the invoices');
  cancelTicket(store, old, 'cli');
  const newer = fileTicket(intake, 'Export fails', 'Error: export failed for the invoices');
  assert.notEqual(newer, old);
  const c = claimNext(store, 1, null, 60)!;
  finishRun(store, c.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed to staging' });
  const r = approvals.requeue(old, 'carol');
  assert.equal(r.ok, false);
  assert.match(r.message, new RegExp(`ticket ${newer} \\(the same error, filed later; pushed\\) carries this one on`));
  assert.equal(store.getTicket(old)!.state, 'dropped');
});

// Review findings: a failed ticket was requeued past a newer ticket of its error that had
// failed too (two tickets for one error, occurrences going to the failed one); and a
// claimed ticket requeued, or sent back by a lost run, sat "queued" for ever (the
// dispatcher never takes a claimed ticket).
test('a failed ticket is not requeued past a newer one of its error; a claimed ticket is neither requeued nor put back in the queue', (t) => {
  const { store, intake, approvals } = setup(t, { queue: { maxAttempts: 1 } });
  const first = fileTicket(intake, 'Export fails', 'Error: export failed for the invoices');
  const c1 = claimNext(store, 1, null, 60)!;
  finishRun(store, c1.run.id, { ticketState: 'failed', outcome: 'failed', reason: 'tests failed' });
  const second = fileTicket(intake, 'Export fails', 'Error: export failed for the invoices');
  assert.notEqual(second, first);
  const c2 = claimNext(store, 1, null, 60)!;
  finishRun(store, c2.run.id, { ticketState: 'failed', outcome: 'failed', reason: 'tests failed' });
  const r = approvals.requeue(first, 'carol');
  assert.equal(r.ok, false);
  assert.match(r.message, new RegExp(`ticket ${second} \\(the same error, filed later; failed\\) carries this one on: requeue that one instead`));
  assert.equal(store.getTicket(first)!.state, 'failed');

  intake.claim(second, 'alice');
  const claimed = approvals.requeue(second, 'carol');
  assert.equal(claimed.ok, false);
  assert.match(claimed.message, new RegExp(`ticket ${second} is claimed by alice: release the claim first`));
  intake.claim(second, 'alice', { release: true });
  assert.equal(approvals.requeue(second, 'carol').ok, true);

  // Claimed while its run was under way, and the run is lost: deferred, not queued.
  const c3 = claimNext(store, 1, null, 60)!;
  assert.equal(c3.ticket.id, second);
  intake.claim(second, 'bob');
  store.stmt('UPDATE runs SET lease_until = ? WHERE id = ?').run('2000-01-01T00:00:00.000Z', c3.run.id);
  reclaimRuns(store, { maxAttempts: 3, onlyExpired: true, reason: 'lease expired' });
  const after = store.getTicket(second)!;
  assert.equal(after.state, 'deferred');
  assert.equal(after.triageReason, 'claimed by bob: a person is on it');
});

// Review finding: the claim was read before the changed files were listed (git, off the
// event loop), and the rules then decided on that reading: a claim made meanwhile was
// not seen, and the fix was merged without the person who had just taken the ticket.
test('auto-approval sees a claim made while it lists the changed files', async (t) => {
  const { s, target, id, staging } = smallFixAwaiting(t);
  const deciding = s.approvals.considerAutoApproval(id);
  s.intake.claim(id, 'dana');
  assert.equal(await deciding, null);
  assert.match(s.store.auditTrail(id).at(-1)!.detail!, /claimed by dana: a person decides/);
  assert.equal(s.store.getTicket(id)!.state, 'awaiting_approval');
  assert.equal(target.originGit('rev-parse', 'staging'), staging, 'nothing merged');
});

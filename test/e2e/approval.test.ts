/**
 * Approval mode end to end (issue 6), with real git (a target and its bare origin), a
 * local server speaking GitHub's documented REST responses for creating a pull
 * request, the API over a real store, and the `bugbot` CLI as a process.
 */
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import assert from 'node:assert/strict';
import { cancelTicket } from '../../control/queue/leases.ts';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createApp } from '../../control/app.ts';
import type { ConfigFile } from '../../control/config.ts';
import { Approvals, changedFiles } from '../../control/dispatcher/approvals.ts';
import { checkPullRequests } from '../../control/dispatcher/pr-watch.ts';
import { Intake } from '../../control/intake/index.ts';
import { silentLogger } from '../../control/log.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { approvalsForTicket } from '../../control/queue/approvals.ts';
import { Store } from '../../control/queue/store.ts';
import type { TicketNotice } from '../../control/types.ts';
import { createRedactor } from '../../lib/redact.ts';
import { createGitTarget, fileTicket, finishAwaiting, pushFixBranch, type GitTarget } from '../support/approval.ts';
import { FakeClock, postJson, repoRoot, tempDir, testConfig, waitFor } from '../support/helpers.ts';
import { startBugbot } from '../support/process.ts';

function setup(t: TestContext, flags: ConfigFile = {}, env: NodeJS.ProcessEnv = {}, clock?: FakeClock) {
  const dir = tempDir(t, 'bugbot-approval-');
  const target = createGitTarget(dir);
  const home = join(dir, 'home');
  const config = testConfig(
    home,
    { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' }, target: { repo: target.repo }, ...flags },
    env,
  );
  const store = new Store(join(home, 'bugbot.db'), { now: clock?.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const archive = new OutcomeArchive(home);
  const notices: TicketNotice[] = [];
  const approvals = new Approvals({ config, store, logger: silentLogger, archive, onNotice: (n) => notices.push(n) });
  /** A ticket whose fix (file ← content) waits on its bot branch on origin. */
  const awaiting = (title: string, file = 'greeting.txt', content = 'hello, fixed\n') => {
    const id = fileTicket(intake, title, `Error: ${title}`);
    return finishAwaiting({ store, config, archive, ticketId: id }, (branch) => pushFixBranch(target, branch, file, content, `bugbot: fix for ticket ${id}`));
  };
  return { dir, home, target, config, store, intake, archive, approvals, notices, awaiting };
}

const stagingHas = (target: GitTarget, message: string) =>
  target.originGit('log', '--format=%s', 'staging').split('\n').filter((s) => s === message).length;

function worktrees(target: GitTarget): string[] {
  return target.git('worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree '));
}

test('approve (target staging): the fix is rebased onto staging and pushed; the ticket is pushed, audited, notified and archived', async (t) => {
  const s = setup(t);
  const fix = s.awaiting('Greeting says hello');
  // Staging moved on since the bot branch was cut: the approval rebases onto it.
  s.target.git('checkout', '--quiet', '-b', 'st', 'origin/staging');
  writeFileSync(join(s.target.repo, 'other.txt'), 'one\ntwo\nthree\n');
  s.target.git('commit', '--quiet', '-am', 'someone else on staging');
  s.target.git('push', '--quiet', 'origin', 'HEAD:staging');
  s.target.git('checkout', '--quiet', 'main');

  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, true, r.message);
  assert.equal(r.state, 'pushed');
  const head = s.target.originGit('rev-parse', 'staging');
  assert.equal(r.commit, head);
  assert.match(r.message, new RegExp(`merged ${fix.branch} into staging at ${head.slice(0, 12)}`));
  assert.equal(stagingHas(s.target, `bugbot: fix for ticket ${fix.ticketId}`), 1);
  assert.equal(stagingHas(s.target, 'someone else on staging'), 1, 'rebased on top of the other change, not over it');
  assert.equal(s.target.originGit('show', 'staging:greeting.txt'), 'hello, fixed');
  assert.equal(s.target.originGit('log', '-1', '--format=%cn', 'staging'), 'bugbot');

  const ticket = s.store.getTicket(fix.ticketId)!;
  assert.equal(ticket.state, 'pushed');
  assert.ok(ticket.pushedAt);
  const audit = s.store.auditTrail(fix.ticketId);
  assert.ok(audit.some((a) => a.actor === 'alice' && a.action === 'approved' && a.detail === r.message));
  const [row] = approvalsForTicket(s.store, fix.ticketId);
  assert.deepEqual([row!.action, row!.status, row!.actor, row!.target, row!.commit_sha], ['approve', 'done', 'alice', 'staging', head]);
  assert.equal(s.notices.length, 1);
  assert.deepEqual([s.notices[0]!.kind, s.notices[0]!.commit, s.notices[0]!.branch, s.notices[0]!.ticket.state], ['fixed', head, fix.branch, 'pushed']);
  const latest = s.archive.latest().find((x) => x.run_id === fix.run.id)!;
  assert.deepEqual([latest.revision, latest.state, latest.commit, latest.pushed_to, latest.approved_by], [2, 'pushed', head, 'staging', 'alice']);
  assert.deepEqual(worktrees(s.target), [`worktree ${s.target.repo}`], 'no worktree left behind');

  const again = await s.approvals.approve(fix.ticketId, 'bob');
  assert.equal(again.ok, false);
  assert.match(again.message, /is pushed: only a ticket that is awaiting_approval can be approved/);
});

test("the merge's commits are by the configured identity (harness.gitIdentity), the fix's author kept", async (t) => {
  const s = setup(t, { harness: { pushMode: 'approve', gitIdentity: { name: 'Fix Bot', email: 'fixbot@example.com' } } });
  const fix = s.awaiting('Greeting says hi');
  // Staging moved on: the rebase writes a new commit, with a committer.
  s.target.git('checkout', '--quiet', '-b', 'st2', 'origin/staging');
  writeFileSync(join(s.target.repo, 'other.txt'), 'moved\n');
  s.target.git('add', 'other.txt');
  s.target.git('commit', '--quiet', '-m', 'staging moved');
  s.target.git('push', '--quiet', 'origin', 'HEAD:staging');
  s.target.git('checkout', '--quiet', 'main');

  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, true, r.message);
  assert.equal(s.target.originGit('log', '-1', '--format=%cn <%ce>', 'staging'), 'Fix Bot <fixbot@example.com>');
  assert.equal(s.target.originGit('log', '-1', '--format=%an', 'staging'), s.target.git('log', '-1', '--format=%an', `origin/${fix.branch}`));
});

test('approving a fix whose changes are on staging already (an earlier merge went through before it was stopped) names no one else\'s commit', async (t) => {
  const s = setup(t);
  const fix = s.awaiting('Greeting says hello');
  // The earlier merge's push went through; then someone else pushed on top.
  s.target.git('checkout', '--quiet', '-b', 'st', `origin/${fix.branch}`);
  s.target.git('push', '--quiet', 'origin', 'HEAD:staging');
  writeFileSync(join(s.target.repo, 'other.txt'), 'one\n');
  s.target.git('add', 'other.txt');
  s.target.git('commit', '--quiet', '-m', 'someone else on staging');
  s.target.git('push', '--quiet', 'origin', 'HEAD:staging');
  s.target.git('checkout', '--quiet', 'main');
  const before = s.target.originGit('rev-parse', 'staging');

  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, true, r.message);
  assert.equal(r.state, 'pushed');
  assert.equal(r.commit, undefined, "staging's head is someone else's commit, not the fix's");
  assert.match(r.message, new RegExp(`${fix.branch}'s changes are on staging already .*nothing merged again`));
  assert.equal(s.target.originGit('rev-parse', 'staging'), before, 'nothing pushed');
  assert.equal(s.notices[0]?.commit, undefined);
});

test('two approvals of the same ticket at once merge it exactly once', async (t) => {
  const s = setup(t);
  const fix = s.awaiting('Double click approves twice');
  const results = await Promise.all([s.approvals.approve(fix.ticketId, 'alice'), s.approvals.approve(fix.ticketId, 'bob')]);
  assert.deepEqual(results.map((r) => r.ok).sort(), [false, true]);
  const loser = results.find((r) => !r.ok)!;
  assert.equal(loser.failure, 'busy');
  assert.match(loser.message, /being approved by (alice|bob)/);
  assert.equal(stagingHas(s.target, `bugbot: fix for ticket ${fix.ticketId}`), 1);
  assert.equal(s.notices.length, 1);
});

test('cancel while a merge is in flight is refused, saying why (the merge lands either way)', async (t) => {
  const s = setup(t);
  const fix = s.awaiting('Cancel during merge');
  const merging = s.approvals.approve(fix.ticketId, 'alice');
  const r = cancelTicket(s.store, fix.ticketId, 'bob');
  assert.match(r?.refused ?? '', /being approved by alice right now: nothing cancelled/);
  assert.equal((await merging).ok, true);
  assert.equal(s.store.getTicket(fix.ticketId)!.state, 'pushed');
});

test('a staging change that conflicts sends the ticket to needs_human naming the file, and leaves no worktree', async (t) => {
  const s = setup(t);
  const fix = s.awaiting('Greeting conflict');
  s.target.git('checkout', '--quiet', '-b', 'st', 'origin/staging');
  writeFileSync(join(s.target.repo, 'greeting.txt'), 'hello, changed on staging\n');
  s.target.git('commit', '--quiet', '-am', 'conflicting change');
  s.target.git('push', '--quiet', 'origin', 'HEAD:staging');
  s.target.git('checkout', '--quiet', 'main');
  const before = s.target.originGit('rev-parse', 'staging');

  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, false);
  assert.equal(r.failure, 'conflict');
  assert.equal(r.state, 'needs_human');
  assert.equal(r.message, 'rebase onto staging conflicts in: greeting.txt');
  assert.equal(s.store.getTicket(fix.ticketId)!.state, 'needs_human');
  assert.equal(s.target.originGit('rev-parse', 'staging'), before, 'staging untouched');
  assert.ok(s.store.auditTrail(fix.ticketId).some((a) => a.action === 'approval-conflict' && /greeting\.txt/.test(a.detail ?? '')));
  assert.deepEqual(approvalsForTicket(s.store, fix.ticketId).map((a) => a.status), ['conflict']);
  assert.deepEqual(worktrees(s.target), [`worktree ${s.target.repo}`]);
  assert.deepEqual(existsSync(join(s.home, 'approvals')) ? readdirSync(join(s.home, 'approvals')) : [], []);
  // The reporters hear that it did not go out and a person takes over.
  assert.deepEqual(
    s.notices.map((n) => [n.kind, n.kind === 'failed' ? n.reason : '']),
    [['failed', 'approved by alice, but it did not merge: rebase onto staging conflicts in: greeting.txt; a person takes over']],
  );
  // The archive says it never shipped: no clean fix, no time to push, the conflict named.
  const latest = s.archive.latest().find((x) => x.run_id === fix.run.id)!;
  assert.deepEqual([latest.revision, latest.state, latest.outcome, latest.trigger_to_push_s], [2, 'needs_human', 'failed', null]);
  assert.match(latest.reason, /approved by alice, but it did not merge: rebase onto staging conflicts in: greeting\.txt$/);
  // A person can still requeue it for a fresh run.
  assert.equal(s.approvals.requeue(fix.ticketId, 'alice').state, 'queued');
});

test('auto-approval: a small, tested fix goes out as auto-approve; one touching a sensitive path waits, saying why', async (t) => {
  const s = setup(t, { approval: { autoApprove: { enabled: true } } });
  const small = s.awaiting('Small fix');
  const r = await s.approvals.considerAutoApproval(small.ticketId);
  assert.equal(r?.ok, true, r?.message);
  assert.equal(s.store.getTicket(small.ticketId)!.state, 'pushed');
  assert.equal(stagingHas(s.target, `bugbot: fix for ticket ${small.ticketId}`), 1);
  const trail = s.store.auditTrail(small.ticketId);
  assert.ok(trail.some((a) => a.actor === 'auto-approve' && a.action === 'auto-approval' && /1 file\(s\), 2 line\(s\), tests passed/.test(a.detail ?? '')));
  assert.ok(trail.some((a) => a.actor === 'auto-approve' && a.action === 'approved'));

  const sensitive = s.awaiting('Touches the manifest', 'package.json', '{"name": "target"}\n');
  assert.equal(await s.approvals.considerAutoApproval(sensitive.ticketId), null);
  assert.equal(s.store.getTicket(sensitive.ticketId)!.state, 'awaiting_approval');
  const last = s.store.auditTrail(sensitive.ticketId).at(-1)!;
  assert.equal(last.action, 'auto-approval-declined');
  assert.match(last.detail!, /sensitive paths touched: package\.json/);
});

// The rules read a run's files with git, and the ticket could be requeued and wait again
// with another run's fix meanwhile: that fix was approved on the first one's say-so.
test("auto-approval approves the run it judged: another run's fix waiting by the time git answered is left to its own rules", async (t) => {
  const clock = new FakeClock();
  const s = setup(t, { approval: { autoApprove: { enabled: true } } }, {}, clock);
  const first = s.awaiting('Judged fix');
  const judging = s.approvals.considerAutoApproval(first.ticketId);
  // While git lists the first run's files: a person requeues it, and the next run's fix
  // (a sensitive path, which the rules would hold) is the one waiting. (A minute on: a
  // bot branch is named after the second its run started.)
  assert.equal(s.approvals.requeue(first.ticketId, 'alice').ok, true);
  clock.advance(60);
  const message = `bugbot: second fix for ticket ${first.ticketId}`;
  const second = finishAwaiting({ store: s.store, config: s.config, archive: s.archive, ticketId: first.ticketId }, (branch) =>
    pushFixBranch(s.target, branch, 'package.json', '{"name": "target"}\n', message),
  );
  assert.notEqual(second.run.id, first.run.id);
  assert.equal(await judging, null, "the first run's verdict does not approve the second");
  assert.equal(s.store.getTicket(first.ticketId)!.state, 'awaiting_approval');
  assert.equal(stagingHas(s.target, message), 0, 'nothing merged');
  assert.ok(!s.store.auditTrail(first.ticketId).some((a) => a.actor === 'auto-approve'), 'no verdict recorded for a run the rules did not see');
  // The second run's own turn: its sensitive path holds it for a person.
  assert.equal(await s.approvals.considerAutoApproval(first.ticketId), null);
  assert.match(s.store.auditTrail(first.ticketId).at(-1)!.detail ?? '', /sensitive paths touched: package\.json/);
});

interface SeenRequest {
  path: string;
  authorization: string | undefined;
  accept: string | undefined;
  body: { head: string; base: string; title: string; body: string };
}

/** GitHub's pull requests as documented: GET lists a branch's open ones, POST answers 201 with the new one, or 422 when it is refused. */
async function fakeGitHub(t: TestContext, opts: { exists?: boolean; existsInto?: string; refuse?: boolean } = {}) {
  const seen: SeenRequest[] = [];
  const listed: string[] = [];
  /** What GET /repos/{owner}/{repo}/pulls/{number} answers of each pull request (open until set). */
  const pulls = new Map<number, { state: 'open' | 'closed'; merged_at: string | null }>();
  const app = new Hono();
  app.get('/api/v3/repos/:owner/:repo/pulls/:number', (c) => {
    const number = Number(c.req.param('number'));
    const { owner, repo } = c.req.param();
    const pr = pulls.get(number) ?? { state: 'open', merged_at: null };
    return c.json({ number, html_url: `https://github.example.com/${owner}/${repo}/pull/${number}`, state: pr.state, merged: pr.merged_at !== null, merged_at: pr.merged_at });
  });
  // GET /repos/{owner}/{repo}/pulls?head=owner:branch&state=open: the open pull requests of a branch.
  app.get('/api/v3/repos/:owner/:repo/pulls', (c) => {
    const head = c.req.query('head') ?? '';
    listed.push(head);
    const { owner, repo } = c.req.param();
    // The open pull request of the branch (into existsInto, default staging); ?base= filters them as GitHub does.
    const into = opts.existsInto ?? 'staging';
    const wanted = c.req.query('base');
    const open =
      (opts.exists || opts.existsInto) && (!wanted || wanted === into)
        ? [{ number: 9, html_url: `https://github.example.com/${owner}/${repo}/pull/9`, state: 'open', head: { ref: head.split(':')[1], label: head }, base: { ref: into, label: `${owner}:${into}` } }]
        : [];
    return c.json(open);
  });
  app.post('/api/v3/repos/:owner/:repo/pulls', async (c) => {
    const body = (await c.req.json()) as SeenRequest['body'];
    seen.push({ path: c.req.path, authorization: c.req.header('authorization'), accept: c.req.header('accept'), body });
    const { owner, repo } = c.req.param();
    if (opts.refuse) {
      return c.json(
        {
          message: 'Validation Failed',
          errors: [{ resource: 'PullRequest', code: 'custom', message: `No commits between ${body.base} and ${body.head}` }],
          documentation_url: 'https://docs.github.com/rest/pulls/pulls#create-a-pull-request',
          status: '422',
        },
        422,
      );
    }
    const number = 17;
    return c.json(
      {
        url: `${new URL(c.req.url).origin}/api/v3/repos/${owner}/${repo}/pulls/${number}`,
        id: 1017,
        number,
        state: 'open',
        html_url: `https://github.example.com/${owner}/${repo}/pull/${number}`,
        title: body.title,
        body: body.body,
        head: { ref: body.head, sha: 'a'.repeat(40), label: `${owner}:${body.head}` },
        base: { ref: body.base, sha: 'b'.repeat(40), label: `${owner}:${body.base}` },
        draft: false,
        merged: false,
      },
      201,
    );
  });
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  return { apiUrl: `http://127.0.0.1:${port}/api/v3`, seen, listed, pulls };
}

const PR_FLAGS = (apiUrl: string): ConfigFile => ({
  approval: { target: 'pr', github: { apiUrl, owner: 'acme', repo: 'petshop', tokenEnv: 'BUGBOT_TEST_GH_TOKEN' } },
});

test('approve (target pr): the pull request carries head, base, title, body and the token; its URL is stored and returned', async (t) => {
  const gh = await fakeGitHub(t);
  const s = setup(t, PR_FLAGS(gh.apiUrl), { BUGBOT_TEST_GH_TOKEN: 'ghp_testtoken123' });
  const fix = s.awaiting('Greeting is wrong');
  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, true, r.message);
  assert.equal(r.prUrl, 'https://github.example.com/acme/petshop/pull/17');
  assert.equal(r.state, 'pushed');
  const branchHead = s.target.originGit('rev-parse', fix.branch);
  assert.equal(r.commit, branchHead);

  assert.equal(gh.seen.length, 1);
  const req = gh.seen[0]!;
  assert.equal(req.path, '/api/v3/repos/acme/petshop/pulls');
  assert.match(req.authorization ?? '', /^(token|bearer) ghp_testtoken123$/i);
  assert.match(req.accept ?? '', /application\/vnd\.github/);
  assert.equal(req.body.head, fix.branch);
  assert.equal(req.body.base, 'staging');
  assert.equal(req.body.title, `bugbot: Greeting is wrong (#${fix.ticketId})`);
  assert.match(req.body.body, /```text\nError: Greeting is wrong\n```/, 'the report, fenced');
  assert.match(req.body.body, /Root cause: greeting\(\) returns the wrong word/, 'plan.md');
  assert.match(req.body.body, /Verdict: approved/);
  assert.match(req.body.body, /first test gate without new failures: true/);
  assert.match(req.body.body, /tests: 12 passed, 0 failed/);
  assert.match(req.body.body, new RegExp(`branch {5}${fix.branch}`));

  assert.equal(s.store.getTicket(fix.ticketId)!.state, 'pushed');
  const [row] = approvalsForTicket(s.store, fix.ticketId);
  assert.deepEqual([row!.status, row!.target, row!.pr_url, row!.commit_sha], ['done', 'pr', r.prUrl, branchHead]);
  assert.ok(s.store.auditTrail(fix.ticketId).some((a) => a.action === 'approved' && a.detail?.includes(r.prUrl!)));
  assert.equal(s.notices[0]!.prUrl, r.prUrl);
  const latest = s.archive.latest().find((x) => x.run_id === fix.run.id)!;
  assert.deepEqual([latest.revision, latest.pushed_to, latest.pr_url], [2, r.prUrl, r.prUrl]);
  assert.equal(s.target.originGit('rev-parse', 'staging'), s.target.originGit('rev-parse', 'main'), 'nothing merged into staging');
});

// Review finding: a ticket whose fix was an open pull request was `pushed` from the moment
// the pull request was opened: the error recurring an hour later (the code unchanged until
// someone merges) opened a regression, and a second run fixed the same bug again.
test('approve (target pr): the fix is live once its pull request is merged: recurrences count against it until then, a regression after; closed unmerged, a person looks', async (t) => {
  const gh = await fakeGitHub(t);
  const s = setup(t, PR_FLAGS(gh.apiUrl), { BUGBOT_TEST_GH_TOKEN: 't' });
  const recur = (title: string, at: Date) =>
    s.intake.accept([{ source: 'manual', kind: 'error', title, message: `Error: ${title}`, labels: {}, count: 1, firstSeen: at.toISOString(), lastSeen: at.toISOString(), human: false, sourceEventId: `recur-${title}-${at.getTime()}` }])[0]!;
  const fix = s.awaiting('Greeting is wrong');
  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, true, r.message);
  assert.deepEqual([s.store.getTicket(fix.ticketId)!.state, s.store.getTicket(fix.ticketId)!.pushedAt], ['pushed', null], 'not live before the merge');

  // An hour on, the pull request still open: the error is still the old code's.
  const open = recur('Greeting is wrong', new Date(Date.now() + 3_600_000));
  assert.deepEqual([open.status, open.ticketId, open.reason], ['merged', fix.ticketId, 'seen while its fix waits in a pull request not merged yet']);
  assert.deepEqual(await checkPullRequests(s.config, s.store, silentLogger), [{ ticketId: fix.ticketId, prUrl: r.prUrl!, now: 'open' }]);
  assert.equal(s.store.getTicket(fix.ticketId)!.pushedAt, null);

  // Merged two hours ago: live from then, and a recurrence now, past the grace period, is a regression.
  const mergedAt = new Date(Date.now() - 2 * 3_600_000).toISOString();
  gh.pulls.set(17, { state: 'closed', merged_at: mergedAt });
  assert.deepEqual(await checkPullRequests(s.config, s.store, silentLogger), [{ ticketId: fix.ticketId, prUrl: r.prUrl!, now: 'merged', at: mergedAt }]);
  assert.equal(s.store.getTicket(fix.ticketId)!.pushedAt, mergedAt);
  assert.ok(s.store.auditTrail(fix.ticketId).some((a) => a.actor === 'github' && a.action === 'pr-merged'));
  assert.deepEqual(await checkPullRequests(s.config, s.store, silentLogger), [], 'asked no more');
  const after = recur('Greeting is wrong', new Date());
  assert.equal(after.status, 'regression');
  assert.notEqual(after.ticketId, fix.ticketId);

  // Another fix's pull request closed without merging: the ticket waits for a person.
  const other = s.awaiting('Farewell is wrong', 'farewell.txt');
  gh.pulls.set(17, { state: 'closed', merged_at: null });
  assert.equal((await s.approvals.approve(other.ticketId, 'alice')).ok, true);
  const [closed, ...rest] = await checkPullRequests(s.config, s.store, silentLogger);
  assert.deepEqual([closed!.ticketId, closed!.prUrl, closed!.now, rest], [other.ticketId, r.prUrl!, 'closed', []]);
  // Its reporters heard the fix was in that pull request: they hear it will not be.
  assert.deepEqual([closed!.notice?.kind, closed!.notice?.ticket.id, closed!.notice?.reason], ['failed', other.ticketId, `its pull request ${r.prUrl!} was closed without merging, so the fix never went live`]);
  assert.equal(s.store.getTicket(other.ticketId)!.state, 'needs_human');
  assert.match(s.store.auditTrail(other.ticketId).at(-1)!.detail ?? '', /closed without merging: the fix never went live/);
});

test('approve (target pr): a pull request an earlier try opened (its answer lost) is found, not opened again', async (t) => {
  const gh = await fakeGitHub(t, { exists: true });
  const s = setup(t, PR_FLAGS(gh.apiUrl), { BUGBOT_TEST_GH_TOKEN: 't' });
  const fix = s.awaiting('Already open');
  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, true, r.message);
  assert.equal(r.prUrl, 'https://github.example.com/acme/petshop/pull/9');
  assert.deepEqual(gh.listed, [`acme:${fix.branch}`]);
  assert.equal(gh.seen.length, 0, 'no second pull request asked for');
});

// Review finding: an open pull request of the bot branch into another branch (opened by
// hand, or under an earlier approval.github.base) was taken for the fix's: the ticket named
// it, and its merge into that branch counted as the fix going live on staging.
test('approve (target pr): an open pull request of the branch into another base is not taken for the fix\'s', async (t) => {
  const gh = await fakeGitHub(t, { existsInto: 'experiments' });
  const s = setup(t, PR_FLAGS(gh.apiUrl), { BUGBOT_TEST_GH_TOKEN: 't' });
  const fix = s.awaiting('Open into another base');
  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, true, r.message);
  assert.equal(r.prUrl, 'https://github.example.com/acme/petshop/pull/17', 'a pull request into staging opened');
  assert.equal(gh.seen.length, 1);
  assert.equal(gh.seen[0]!.body.base, 'staging');
  assert.equal(approvalsForTicket(s.store, fix.ticketId)[0]!.pr_url, r.prUrl);
});

test('approve (target pr): a branch pushed over since it was reviewed gets no pull request', async (t) => {
  const gh = await fakeGitHub(t);
  const s = setup(t, PR_FLAGS(gh.apiUrl), { BUGBOT_TEST_GH_TOKEN: 't' });
  const fix = s.awaiting('Pushed over');
  const reviewed = s.target.originGit('rev-parse', fix.branch);
  s.target.git('checkout', '--quiet', '-b', 'over', `origin/${fix.branch}`);
  writeFileSync(join(s.target.repo, 'unreviewed.txt'), 'nobody saw this\n');
  s.target.git('add', 'unreviewed.txt');
  s.target.git('commit', '--quiet', '-m', 'unreviewed');
  s.target.git('push', '--quiet', '--force', 'origin', `HEAD:${fix.branch}`);
  s.target.git('checkout', '--quiet', 'main');
  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, false);
  assert.equal(r.state, 'awaiting_approval');
  assert.equal(r.message, `${fix.branch} has moved since it was reviewed (expected ${reviewed}): no pull request for what nobody reviewed`);
  assert.equal(gh.seen.length + gh.listed.length, 0, 'GitHub not asked');
  assert.equal(s.notices.length, 0);
});

test('approve (target pr): GitHub refusing keeps the ticket awaiting approval, with GitHub\'s reason', async (t) => {
  const gh = await fakeGitHub(t, { refuse: true });
  const s = setup(t, { approval: { target: 'pr', github: { apiUrl: gh.apiUrl, owner: 'acme', repo: 'petshop', tokenEnv: 'BUGBOT_TEST_GH_TOKEN', base: 'main' } } }, { BUGBOT_TEST_GH_TOKEN: 't' });
  const fix = s.awaiting('Refused');
  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, false);
  assert.equal(r.failure, 'error');
  assert.equal(r.state, 'awaiting_approval');
  assert.match(r.message, /GitHub refused the pull request \(422\).*No commits between main and bot\/ticket-/);
  assert.equal(gh.seen[0]!.body.base, 'main', 'approval.github.base overrides the staging branch');
  assert.equal(s.notices.length, 0);

  // Without the token nothing is sent.
  const noToken = setup(t, PR_FLAGS(gh.apiUrl));
  const fix2 = noToken.awaiting('No token');
  const r2 = await noToken.approvals.approve(fix2.ticketId, 'alice');
  assert.match(r2.message, /BUGBOT_TEST_GH_TOKEN is not set/);
  assert.equal(gh.seen.length, 1);
});

test('API: approve / skip / requeue answer 200, 404 for an unknown ticket, 409 with the message when the state does not allow it', async (t) => {
  const s = setup(t);
  const app = createApp({ config: s.config, store: s.store, intake: s.intake, logger: silentLogger, approvals: s.approvals });
  const fix = s.awaiting('API approval');
  const other = s.awaiting('Skip me', 'other.txt', 'changed\n');
  const queued = fileTicket(s.intake, 'Still queued', 'Error: still queued');

  // The run looked at, when given, must be the fix's: a stale one is a 409, a malformed one a 400.
  assert.equal((await postJson(app, `/api/tickets/${fix.ticketId}/approve`, '{"run": "latest"}')).status, 400);
  const stale = await postJson(app, `/api/tickets/${fix.ticketId}/approve`, { run: fix.run.id + 1 });
  assert.equal(stale.status, 409);
  // (Run fix.run.id + 1 is the other ticket's: this ticket never had it.)
  assert.match(((await stale.json()) as { message: string }).message, /has no run \d+ \(the fix waiting for approval is run \d+'s\)/);
  // A caller cannot record its approval as bugbot's own actors (the rules, a Slack user, the dashboard).
  for (const name of ['auto-approve', 'slack:U123', 'dashboard:local', ' ']) {
    const reserved = await postJson(app, `/api/tickets/${fix.ticketId}/approve`, { run: fix.run.id }, { 'x-bugbot-user': name });
    assert.equal(reserved.status, 400, name);
  }
  assert.equal(s.store.getTicket(fix.ticketId)!.state, 'awaiting_approval');
  const ok = await postJson(app, `/api/tickets/${fix.ticketId}/approve`, { run: fix.run.id }, { 'x-bugbot-user': 'dana' });
  assert.equal(ok.status, 200);
  const okBody = (await ok.json()) as { ok: boolean; state: string; message: string; commit: string };
  assert.equal(okBody.ok, true);
  assert.equal(okBody.state, 'pushed');
  assert.equal(okBody.commit, s.target.originGit('rev-parse', 'staging'));
  assert.ok(s.store.auditTrail(fix.ticketId).some((a) => a.actor === 'dana' && a.action === 'approved'));

  const conflict = await postJson(app, `/api/tickets/${queued}/approve`, {});
  assert.equal(conflict.status, 409);
  const cBody = (await conflict.json()) as { ok: boolean; state: string; message: string; error: { code: string; message: string } };
  assert.deepEqual([cBody.ok, cBody.state, cBody.error.code], [false, 'queued', 'state']);
  assert.match(cBody.message, /is queued: only a ticket that is awaiting_approval can be approved/);

  assert.equal((await postJson(app, '/api/tickets/9999/approve', {})).status, 404);
  assert.equal((await postJson(app, '/api/tickets/9999/skip', {})).status, 404);
  assert.equal((await postJson(app, '/api/tickets/9999/requeue', {})).status, 404);
  assert.equal((await postJson(app, `/api/tickets/${queued}/skip`, '{"reason": 5}')).status, 400);
  assert.equal((await postJson(app, `/api/tickets/${queued}/requeue`, {})).status, 409);

  const skip = await postJson(app, `/api/tickets/${other.ticketId}/skip`, { reason: 'not worth it' });
  assert.equal(skip.status, 200);
  assert.deepEqual(((await skip.json()) as { state: string }).state, 'dropped');
  assert.equal(s.store.auditTrail(other.ticketId).at(-1)!.detail, 'was awaiting_approval: not worth it');

  const detail = (await (await app.request(`/api/tickets/${other.ticketId}`)).json()) as { approvals: Array<{ action: string }> };
  assert.deepEqual(detail.approvals.map((a) => a.action), ['skip']);

  const without = createApp({ config: s.config, store: s.store, intake: s.intake, logger: silentLogger });
  assert.equal((await postJson(without, `/api/tickets/${other.ticketId}/requeue`, {})).status, 503);
});

const BIN = join(repoRoot, 'bin/bugbot.js');
function bugbot(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn' }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('CLI: bugbot approve / skip / requeue on their own, and through a running bugbot start', { timeout: 120_000 }, async (t) => {
  const s = setup(t);
  const configPath = join(s.dir, 'bugbot.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({ home: s.home, workers: 1, intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' }, target: { repo: s.target.repo } }),
  );
  const cli = (...args: string[]) => bugbot(['--config', configPath, ...args], s.dir);
  const fix = s.awaiting('CLI approval');
  const second = s.awaiting('Through the server', 'other.txt', 'changed by the fix\n');
  const third = s.awaiting('Requeue me', 'other.txt', 'another change\n');

  const a = cli('approve', String(fix.ticketId), '--by', 'erin');
  assert.equal(a.code, 0, a.stderr);
  const head = s.target.originGit('rev-parse', 'staging');
  assert.match(a.stdout, new RegExp(`^ticket ${fix.ticketId}: merged ${fix.branch} into staging at ${head.slice(0, 12)}; now pushed\\n  commit ${head}\\n$`));
  assert.equal(s.store.getTicket(fix.ticketId)!.state, 'pushed');
  assert.ok(s.store.auditTrail(fix.ticketId).some((x) => x.actor === 'erin' && x.action === 'approved'));

  const again = cli('approve', String(fix.ticketId));
  assert.equal(again.code, 1);
  assert.match(again.stderr, /bugbot: ticket \d+ is pushed: only a ticket that is awaiting_approval can be approved/);
  const missing = cli('skip', '4242');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no ticket 4242/);

  // --run names the run looked at: one that is not the ticket's latest is refused, nothing requeued.
  const staleRq = cli('requeue', String(third.ticketId), '--run', String(third.run.id + 1000));
  assert.equal(staleRq.code, 1);
  assert.match(staleRq.stderr, new RegExp(`ticket ${third.ticketId} has no run ${third.run.id + 1000} \\(its latest run is run ${third.run.id}\\)`));
  assert.equal(s.store.getTicket(third.ticketId)!.state, 'awaiting_approval');
  const rq = cli('requeue', String(third.ticketId), '--run', String(third.run.id));
  assert.equal(rq.code, 0, rq.stderr);
  assert.match(rq.stdout, /requeued \(awaiting_approval → queued, attempts reset\); now queued/);
  // Nothing may wait in the queue once the server below starts: its dispatcher would run it.
  s.approvals.skip(third.ticketId, 'test');

  // With bugbot start running on this home, the CLI goes through it.
  const server = await startBugbot(t, { configPath });
  await waitFor(() => existsSync(join(s.home, 'server.json')), 10_000, 'server.json');
  const staleViaServer = cli('requeue', String(second.ticketId), '--run', String(second.run.id + 1000));
  assert.equal(staleViaServer.code, 1);
  assert.match(staleViaServer.stderr, new RegExp(`has no run ${second.run.id + 1000} \\(its latest run is run ${second.run.id}\\).*\\(via the control plane`));
  assert.equal(s.store.getTicket(second.ticketId)!.state, 'awaiting_approval');
  const viaServer = cli('skip', String(second.ticketId), '--reason', 'duplicate of another fix', '--by', 'frank');
  assert.equal(viaServer.code, 0, viaServer.stderr + server.output());
  assert.match(viaServer.stdout, new RegExp(`skipped \\(awaiting_approval → dropped\\): duplicate of another fix; now dropped \\(via the control plane at ${server.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
  assert.equal(s.store.getTicket(second.ticketId)!.state, 'dropped');
  assert.ok(s.store.auditTrail(second.ticketId).some((x) => x.actor === 'frank' && x.action === 'skipped'));
  const refused = cli('approve', String(second.ticketId));
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /is dropped: only a ticket that is awaiting_approval can be approved \(via the control plane/);
  server.proc.kill('SIGTERM');
  assert.equal((await server.exited).code, 0);
  assert.equal(existsSync(join(s.home, 'server.json')), false, 'a stopped server removes its server.json');
});

// Review finding: a Ctrl-C of `bugbot approve` (no server) ended the command and left
// its merge running in its own process group: the merge pushed, the ticket still waited
// for approval with its approval "running", and a skip then dropped a fix on staging.
test('CLI: a Ctrl-C while bugbot approve merges waits for the merge and records it; a second one leaves at once', { timeout: 120_000 }, async (t) => {
  const s = setup(t);
  const configPath = join(s.dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home: s.home, workers: 1, harness: { pushMode: 'approve' }, target: { repo: s.target.repo } }));
  const fix = s.awaiting('Interrupted approval');
  const other = s.awaiting('Left running', 'other.txt', 'changed\n');
  const hook = join(s.target.origin, 'hooks', 'pre-receive');
  // Holds each push until told (a minute at most: a failing test leaves nothing waiting).
  writeFileSync(hook, '#!/bin/sh\ntouch entered\ni=0\nwhile [ ! -e release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\nrm -f entered release\n', { mode: 0o755 });
  const approve = (id: number) => {
    const proc = spawn(process.execPath, [BIN, '--config', configPath, 'approve', String(id), '--by', 'erin'], { cwd: s.dir, env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn' } });
    let stderr = '';
    let stdout = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    t.after(() => proc.kill('SIGKILL'));
    return { proc, exited, out: () => ({ stdout, stderr }) };
  };
  const entered = join(s.target.origin, 'entered');

  const cli = approve(fix.ticketId);
  await waitFor(() => existsSync(entered), 30_000, 'the merge to reach its push');
  cli.proc.kill('SIGINT');
  await waitFor(() => cli.out().stderr.includes('finishes first'), 10_000, 'the CLI to say it waits');
  assert.equal(cli.proc.exitCode, null, 'still waiting for the merge');
  writeFileSync(join(s.target.origin, 'release'), '');
  assert.equal(await cli.exited, 0, cli.out().stderr);
  assert.match(cli.out().stdout, /merged .* into staging .*; now pushed/);
  assert.equal(s.store.getTicket(fix.ticketId)!.state, 'pushed');
  assert.equal(stagingHas(s.target, `bugbot: fix for ticket ${fix.ticketId}`), 1);
  assert.deepEqual(approvalsForTicket(s.store, fix.ticketId).map((a) => a.status), ['done']);

  // Twice: the command goes, the merge goes on (an approve or skip later gives it up).
  const second = approve(other.ticketId);
  await waitFor(() => existsSync(entered), 30_000, 'the second merge to reach its push');
  second.proc.kill('SIGINT');
  await waitFor(() => second.out().stderr.includes('finishes first'), 10_000, 'the CLI to say it waits');
  second.proc.kill('SIGINT');
  assert.equal(await second.exited, 130);
  writeFileSync(join(s.target.origin, 'release'), '');
  await waitFor(() => !existsSync(entered), 10_000, 'the merge left running to finish its push');
});

test('a control plane killed mid-merge: its restart gives the approval up at once, stops the merge and removes its worktree; approving again merges once', { timeout: 120_000 }, async (t) => {
  const s = setup(t);
  const configPath = join(s.dir, 'bugbot.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({ home: s.home, workers: 1, intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' }, target: { repo: s.target.repo } }),
  );
  const fix = s.awaiting('Killed mid-merge');
  // The origin holds every push until told: the merge is caught inside its push.
  const hook = join(s.target.origin, 'hooks', 'pre-receive');
  // (for a minute at most: a failing test leaves nothing waiting behind it)
  writeFileSync(hook, '#!/bin/sh\ntouch entered\ni=0\nwhile [ ! -e release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n', { mode: 0o755 });
  // As the CLI asks a running server: with the local key it wrote to server.json.
  const approve = (url: string) => {
    const { key } = JSON.parse(readFileSync(join(s.home, 'server.json'), 'utf8')) as { key: string };
    return fetch(`${url}/api/tickets/${fix.ticketId}/approve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-bugbot-user': 'alice' },
      body: '{}',
    });
  };
  let server = await startBugbot(t, { configPath });
  const pending = approve(server.url).catch((err: Error) => err);
  await waitFor(() => existsSync(join(s.target.origin, 'entered')), 30_000, 'the merge to reach its push');
  const workDir = join(s.home, 'approvals', `ticket-${fix.ticketId}-1`);
  const mergePid = Number(readFileSync(join(workDir, 'merge.pid'), 'utf8'));
  t.after(() => {
    if (alive(mergePid)) process.kill(-mergePid, 'SIGKILL');
  });
  server.proc.kill('SIGKILL');
  await server.exited;
  assert.ok(await pending instanceof Error, 'the approving request died with its server');
  assert.equal(alive(mergePid), true, 'the merge runs on without its control plane (its own process group)');
  assert.deepEqual(approvalsForTicket(s.store, fix.ticketId).map((a) => a.status), ['running']);
  assert.equal(worktrees(s.target).length, 2, "the merge's worktree is registered in the target's checkout");

  server = await startBugbot(t, { configPath });
  const [given] = approvalsForTicket(s.store, fix.ticketId);
  assert.equal(given!.status, 'abandoned', 'given up at the restart, not 15 minutes later');
  assert.match(given!.message!, /^the approving process \(pid \d+\) stopped before it finished; .*approving again is safe/);
  assert.ok(s.store.auditTrail(fix.ticketId).some((a) => a.action === 'approval-abandoned'));
  await waitFor(() => !alive(mergePid), 5_000, 'the merge left behind to be stopped');
  assert.equal(existsSync(workDir), false, "the approval's folder is removed");
  assert.equal(worktrees(s.target).length, 1, "and the merge's worktree with it");
  assert.equal(stagingHas(s.target, `bugbot: fix for ticket ${fix.ticketId}`), 0, 'the stopped merge pushed nothing');
  assert.equal(s.store.getTicket(fix.ticketId)!.state, 'awaiting_approval');

  writeFileSync(join(s.target.origin, 'release'), '');
  const res = await approve(server.url);
  const body = (await res.json()) as { ok: boolean; state: string; message: string };
  assert.equal(res.status, 200, body.message);
  assert.equal(body.state, 'pushed');
  assert.equal(stagingHas(s.target, `bugbot: fix for ticket ${fix.ticketId}`), 1);
  assert.deepEqual(approvalsForTicket(s.store, fix.ticketId).map((a) => a.status), ['abandoned', 'done']);
  server.proc.kill('SIGTERM');
  assert.equal((await server.exited).code, 0);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Review finding: the pull-request watch ran only while approval.target was "pr": switched
// back to "staging" with pull requests still open, their tickets stayed pushed and not live
// for good (a recurrence never a regression, their run folders kept).
test('pull requests opened under approval.target "pr" are still watched after it is switched to "staging"', { timeout: 60_000 }, async (t) => {
  const gh = await fakeGitHub(t);
  const s = setup(t, PR_FLAGS(gh.apiUrl), { BUGBOT_TEST_GH_TOKEN: 't' });
  const fix = s.awaiting('Greeting is wrong');
  assert.equal((await s.approvals.approve(fix.ticketId, 'alice')).ok, true);
  assert.equal(s.store.getTicket(fix.ticketId)!.pushedAt, null);
  const mergedAt = new Date(Date.now() - 60_000).toISOString();
  gh.pulls.set(17, { state: 'closed', merged_at: mergedAt });

  const configPath = join(s.dir, 'bugbot.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({ home: s.home, workers: 1, target: { repo: s.target.repo }, harness: { pushMode: 'approve' }, approval: { target: 'staging', github: { apiUrl: gh.apiUrl, owner: 'acme', repo: 'petshop', tokenEnv: 'BUGBOT_TEST_GH_TOKEN' } } }),
  );
  const b = await startBugbot(t, { configPath, cwd: s.dir, env: { BUGBOT_TEST_GH_TOKEN: 't' } });
  await waitFor(() => s.store.getTicket(fix.ticketId)!.pushedAt === mergedAt, 20_000, 'the merge noticed at start');
  assert.ok(s.store.auditTrail(fix.ticketId).some((a) => a.actor === 'github' && a.action === 'pr-merged'));
  b.proc.kill('SIGTERM');
  assert.equal((await b.exited).code, 0, b.output());
});

// Review finding: git follows a `commondir` file in a checkout's own .git (which the agent's
// sandbox can write) to the repository it names, config and all: the control plane's own git
// on the base checkout (an approval's ls-remote and diff, the reconciler's and retention's
// clean-up, the dashboard's diffs) ran a command the agent's repository configured.
test("a commondir planted in the base checkout's .git: the control plane's git refuses it, nothing the planted repository configures runs", async (t) => {
  const gh = await fakeGitHub(t);
  const s = setup(t, PR_FLAGS(gh.apiUrl), { BUGBOT_TEST_GH_TOKEN: 't' });
  const fix = s.awaiting('Greeting is wrong');
  const evil = join(s.dir, 'evil');
  const marker = join(s.dir, 'ran');
  spawnSync('git', ['init', '-q', '--bare', evil]);
  spawnSync('git', ['-C', evil, 'config', 'protocol.ext.allow', 'always']);
  spawnSync('git', ['-C', evil, 'config', 'remote.origin.url', `ext::sh -c touch% ${marker}`]);
  writeFileSync(join(s.target.repo, '.git', 'commondir'), `${evil}\n`);
  // What the planted repository would have git do, shown with plain git.
  spawnSync('git', ['-C', s.target.repo, 'ls-remote', 'origin']);
  assert.ok(existsSync(marker), 'the attack works on git unpinned');
  rmSync(marker);

  const r = await s.approvals.approve(fix.ticketId, 'alice');
  assert.equal(r.ok, false, r.message);
  assert.match(r.message, /could not read bot\//);
  assert.equal(existsSync(marker), false, "the planted repository's command never ran");
  assert.deepEqual(await changedFiles(s.config, 'HEAD'), [], 'no diff read through it either');
  assert.equal(existsSync(marker), false);
});

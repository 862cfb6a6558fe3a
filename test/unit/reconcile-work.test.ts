/**
 * What a worker killed without its trap leaves, as a restart finds it: work it never
 * committed goes to its branch before the worktree is removed, and a run whose result
 * line says it pushed is finished as pushed (its outcome written from what the run left),
 * not taken for a crash and made again.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { reconcile, runRepo } from '../../control/dispatcher/reconcile.ts';
import type { Logger } from '../../control/log.ts';
import { claimedRun, tempDir } from '../support/helpers.ts';

const quiet: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, child: () => quiet };
const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();

/** A claimed run with a real repository and the run's worktree on its branch. */
function runWithWorktree(t: TestContext) {
  const repo = join(tempDir(t), 'repo');
  mkdirSync(repo);
  git(repo, 'init', '--quiet', '--initial-branch=main');
  git(repo, 'config', 'user.email', 'dev@example.com');
  git(repo, 'config', 'user.name', 'dev');
  writeFileSync(join(repo, 'app.js'), 'module.exports = 1;\n');
  git(repo, 'add', '-A');
  git(repo, 'commit', '--quiet', '-m', 'init');
  const { home, config, store, ticket, run } = claimedRun(t, { target: { repo } });
  const ticketDir = join(home, 'tickets', String(ticket.id), `run-${run.id}`);
  const worktree = join(home, 'worktrees', `ticket-${ticket.id}-run-${run.id}`);
  const branch = `bot/ticket-${ticket.id}`;
  mkdirSync(join(ticketDir, 'config'), { recursive: true });
  writeFileSync(join(ticketDir, 'config', 'git-excludes'), '/.bashrc\n');
  git(repo, 'worktree', 'add', '--quiet', '-b', branch, worktree, 'main');
  store.db.prepare('UPDATE runs SET worktree = ? WHERE id = ?').run(worktree, run.id);
  return { repo, config, store, ticket, run, ticketDir, worktree, branch };
}

test('a run killed mid-phase: its uncommitted work is committed to its branch before its worktree goes', (t) => {
  const { repo, config, store, run, worktree, branch } = runWithWorktree(t);
  writeFileSync(join(worktree, 'app.js'), 'module.exports = 2; // the fix, half done\n');
  writeFileSync(join(worktree, 'app.test.js'), 'test\n');
  writeFileSync(join(worktree, '.bashrc'), ''); // a sandbox placeholder: never committed

  const result = reconcile(config, store, quiet);

  assert.equal(result.worktreesRemoved, 1);
  assert.equal(existsSync(worktree), false);
  assert.match(git(repo, 'log', '-1', '--format=%s', branch), new RegExp(`partial work on ticket ${run.ticket_id} \\(run ${run.id} stopped`));
  assert.equal(git(repo, 'show', `${branch}:app.js`), 'module.exports = 2; // the fix, half done');
  assert.deepEqual(git(repo, 'ls-tree', '--name-only', branch).split('\n').sort(), ['app.js', 'app.test.js']);
  assert.equal(git(repo, 'log', '-1', '--format=%s', 'main'), 'init', 'nothing but its branch');
  assert.equal(git(repo, 'log', '-1', '--format=%an <%ae> %cn <%ce>', branch), 'bugbot <bugbot@localhost> bugbot <bugbot@localhost>', 'by the default identity');
});

// Review finding: with target.repo changed between a kill -9 and the restart, the restart
// committed the old worktrees' partial work pinned to the new repository (where their
// branches are not) and removed them through it: the work was lost.
test("a killed run's worktree is the repository's it was made in: target.repo changed before the restart keeps its work there", (t) => {
  const { repo, config, store, run, ticketDir, worktree, branch } = runWithWorktree(t);
  // As prepareWorkspace writes it, shell-quoted.
  writeFileSync(join(ticketDir, 'ticket.env'), `export BUGBOT_TICKET_ID='${run.ticket_id}'\nexport BUGBOT_REPO='${repo}'\n`);
  writeFileSync(join(worktree, 'app.js'), 'module.exports = 5; // half done\n');
  const other = join(tempDir(t), 'other');
  mkdirSync(other);
  git(other, 'init', '--quiet', '--initial-branch=main');
  git(other, 'commit', '--quiet', '--allow-empty', '-m', 'another project');

  const result = reconcile({ ...config, target: { ...config.target, repo: other } }, store, quiet);

  assert.equal(result.worktreesRemoved, 1);
  assert.equal(existsSync(worktree), false);
  assert.equal(git(repo, 'show', `${branch}:app.js`), 'module.exports = 5; // half done', 'its partial work, on its branch in its repository');
  assert.doesNotMatch(git(repo, 'worktree', 'list', '--porcelain'), new RegExp(worktree), 'unregistered from its repository');
  assert.equal(git(other, 'for-each-ref', 'refs/heads/bot/'), '', 'nothing written to the newly configured one');
});

test("runRepo reads a run's repository as workspace.ts quotes it, and falls back to the configured one", (t) => {
  const home = tempDir(t);
  const cfg = { home, target: { repo: '/srv/configured' } } as Parameters<typeof runRepo>[0];
  const wt = join(home, 'worktrees', 'ticket-7-run-9');
  assert.equal(runRepo(cfg, wt), '/srv/configured', 'no ticket.env');
  mkdirSync(join(home, 'tickets', '7', 'run-9'), { recursive: true });
  writeFileSync(join(home, 'tickets', '7', 'run-9', 'ticket.env'), `export BUGBOT_REPO='/srv/bob'\\''s shop'\nexport BUGBOT_BASE='main'\n`);
  assert.equal(runRepo(cfg, wt), "/srv/bob's shop");
  assert.equal(runRepo(cfg, join(home, 'worktrees', 'something-else')), '/srv/configured', 'not a run worktree');
});

test("a killed run's partial work is committed by the configured identity (harness.gitIdentity)", (t) => {
  const { repo, config, store, worktree, branch } = runWithWorktree(t);
  const named = { ...config, harness: { ...config.harness, gitIdentity: { name: 'Fix Bot', email: 'fixbot@example.com' } } };
  writeFileSync(join(worktree, 'app.js'), 'module.exports = 3;\n');
  reconcile(named, store, quiet);
  assert.equal(git(repo, 'log', '-1', '--format=%an <%ae> %cn <%ce>', branch), 'Fix Bot <fixbot@example.com> Fix Bot <fixbot@example.com>');
});

test('a run whose worker pushed and was killed before writing its outcome: finished as pushed, not run again', (t) => {
  const { config, store, run, ticketDir } = runWithWorktree(t);
  writeFileSync(join(ticketDir, 'result'), 'pushed\tpushed to staging\n');
  writeFileSync(join(ticketDir, 'push.env'), 'branch=bot/ticket-1\nfiles=1\ninsertions=1\ndeletions=1\ncommit=abc123\npushed_to=staging\n');

  const result = reconcile(config, store, quiet);

  assert.equal(result.requeued, 0);
  assert.equal(result.finished.length, 1);
  assert.equal(store.getTicket(run.ticket_id)?.state, 'pushed');
  assert.ok(existsSync(join(ticketDir, 'outcome.json')), 'its outcome, written from what the run left');
  assert.equal(result.finished[0]!.row.commit, 'abc123');
});

// Review finding: the restart's commit of a killed run's partial work ran the harness's
// git unpinned (no harness_git_pin): it found the shared repository through the worktree's
// `commondir`, a file the agent's sandbox can rewrite, and ran what the config of a
// repository of the agent's making named (here a clean filter) outside any sandbox.
test("a killed run's partial work is kept with the shared repository pinned: a redirected commondir runs nothing", (t) => {
  const { repo, config, store, worktree } = runWithWorktree(t);
  const evil = join(tempDir(t), 'evil');
  const marker = join(tempDir(t), 'filter-ran');
  git(repo, 'clone', '--quiet', '--bare', repo, evil);
  git(evil, 'config', 'filter.pwn.clean', `sh -c 'touch ${marker}; cat'`);
  const admin = git(worktree, 'rev-parse', '--path-format=absolute', '--git-dir');
  writeFileSync(join(admin, 'commondir'), `${evil}\n`);
  assert.equal(git(worktree, 'rev-parse', '--path-format=absolute', '--git-common-dir'), evil, 'the redirect is real: unpinned git follows it');
  writeFileSync(join(worktree, '.gitattributes'), '* filter=pwn\n');
  writeFileSync(join(worktree, 'app.js'), 'module.exports = 4;\n');

  reconcile(config, store, quiet);

  assert.equal(existsSync(marker), false, "the agent's filter ran outside the sandbox");
  assert.equal(existsSync(worktree), false);
});

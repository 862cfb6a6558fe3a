/**
 * What an operator meets at 3 a.m. around the target repository, with the REAL Claude Code
 * CLI and real processes: an origin out of reach and back, target.repo not a plain
 * checkout (a bare repository, a linked worktree), two homes on one checkout. Each ends
 * with the ticket in a sensible state, the workers holding rather than burning through the
 * queue when the machine is at fault, and nothing left behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { tempDir, waitFor } from '../support/helpers.ts';
import { happyPathScripts, readOutcomes, setupPipeline, strayOwnerAlert, worktreeOf, type PipelineEnv } from '../support/pipeline.ts';
import { startBugbot, type BugbotProcess } from '../support/process.ts';
import { processes } from '../support/procs.ts';
import type { Step } from '../support/scripted-model.ts';

type Row = Record<string, unknown> & { outcome: string; reason: string; state: string; attempt: number };

const faster = (flags: Record<string, unknown> = {}): ConfigFile => ({ harness: { idleTimeoutSeconds: 60, heartbeatSeconds: 1, ...flags } }) as ConfigFile;

async function api<T>(bugbot: BugbotProcess, path: string): Promise<T> {
  return (await (await fetch(`${bugbot.url}${path}`)).json()) as T;
}

async function heldReason(bugbot: BugbotProcess): Promise<string> {
  return (await api<{ held: string | null }>(bugbot, '/api/workers')).held ?? '';
}

async function fire(bugbot: BugbotProcess): Promise<void> {
  const res = await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(strayOwnerAlert()) });
  assert.equal(res.status, 200);
}

async function outcomeRow(home: string, n = 1, timeoutMs = 150_000): Promise<Row> {
  await waitFor(() => readOutcomes(home).length >= n, timeoutMs, `outcome row ${n} in ${home}`);
  return readOutcomes(home)[n - 1] as Row;
}

/** The happy path for whichever run asks: its static steps aimed at the worktree the request names. */
function happyForAnyRun(env: PipelineEnv): Record<string, Step[]> {
  const fixed = basename(worktreeOf(env, undefined, 1));
  return Object.fromEntries(
    Object.entries(happyPathScripts(env)).map(([phase, steps]) => [
      phase,
      steps.map((s): Step => (typeof s === 'function' ? s : (req) => JSON.parse(JSON.stringify(s).replaceAll(fixed, basename(worktreeOf(env, req)))) as Step)),
    ]),
  );
}

/** Nothing of a home's runs is left: no worktree, no process naming its folders. */
async function assertNothingLeft(env: PipelineEnv): Promise<void> {
  await waitFor(() => !processes().some((p) => p.cmd.includes(join(env.home, 'tickets'))), 15_000, 'no process of a run left');
  await waitFor(() => !env.target.git('worktree', 'list').includes(join(env.home, 'worktrees')), 15_000, 'worktrees removed and pruned');
}

/** A config of its own for a target that setupPipeline did not make (no runs happen). */
function heldOnlyConfig(t: TestContext, repo: string): { configPath: string; env: NodeJS.ProcessEnv } {
  const dir = tempDir(t, 'bugbot-ops-');
  const configPath = join(dir, 'bugbot.config.json');
  writeFileSync(configPath, JSON.stringify({ home: join(dir, 'home'), target: { repo, devCommand: 'npm run dev', testCommand: 'npm test', baseBranch: 'main' } }));
  return { configPath, env: { ANTHROPIC_API_KEY: 'sk-not-used' } };
}

// Review finding (ops): a bare repository as target.repo held the workers saying it "is not
// a git repository": the operator looks for a wrong path, not for the missing checkout.
test('target.repo a bare repository: the workers hold, saying it is bare and how to make a checkout of it; a linked worktree of a checkout is a target', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'bugbot-ops-repos-');
  const bare = join(dir, 'shop.git');
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', bare]);
  const a = heldOnlyConfig(t, bare);
  const held = await heldReason(await startBugbot(t, a));
  assert.match(held, /target\.repo .*shop\.git is a bare repository: the workers need a checkout of it, with its dependencies installed \(git clone .*shop\.git <folder>, then set target\.repo to that folder\)/, held);

  const checkout = join(dir, 'shop');
  execFileSync('git', ['clone', '--quiet', bare, checkout], { stdio: 'ignore' });
  execFileSync('git', ['-C', checkout, 'commit', '--quiet', '--allow-empty', '-m', 'init'], { env: { ...process.env, GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@a', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@a' } });
  execFileSync('git', ['-C', checkout, 'worktree', 'add', '--quiet', '-b', 'ops', join(dir, 'linked')]);
  const b = heldOnlyConfig(t, join(dir, 'linked'));
  assert.doesNotMatch(await heldReason(await startBugbot(t, b)), /target\.repo/);
});

// Review finding (ops): a fetch of the base branch that failed (the origin out of reach) was a
// counted machine failure: after three refunds each ticket's attempts counted, and an outage
// of half an hour failed the queue one ticket after another while the workers only paused.
test('the origin out of reach when a run starts: the ticket waits, never counted; once it is back, the ticket lands', { timeout: 300_000 }, async (t) => {
  const env = await setupPipeline(t, faster());
  for (const [phase, steps] of Object.entries(happyForAnyRun(env))) env.model.script(phase, steps);
  const gone = `${env.target.origin}.gone`;
  renameSync(env.target.origin, gone);
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  await fire(bugbot);
  const first = await outcomeRow(env.home, 1, 60_000);
  assert.equal(first.state, 'queued', first.reason);
  assert.match(first.reason, /^could not create the worktree from origin\/main: fatal: '.*origin\.git' does not appear to be a git repository; no ticket can cause this: requeued \(this attempt not counted, however often\), and the workers pause$/, first.reason);
  assert.match(await heldReason(bugbot), /^paused after a run the machine could not host \(could not create the worktree from origin\/main/);
  assert.equal((await api<{ ticket: { attempt: number } }>(bugbot, '/api/tickets/1')).ticket.attempt, 0);
  assert.equal(env.model.requests.length, 0, 'no model time spent on a run that could not start');

  renameSync(gone, env.target.origin);
  const second = await outcomeRow(env.home, 2, 200_000);
  assert.equal(second.state, 'pushed', second.reason);
  assert.match(env.target.originGit('show', 'staging:src/pets.ts'), /pet\.owner\?\.name \?\? null/);
  await assertNothingLeft(env);
});

// Scenario (ops): two control planes with homes of their own on one checkout of the target,
// fed the same alert at once. Ticket 1 in both, claimed in the same second: the same branch name.
test('two homes on one checkout, the same alert at once: each ticket ends in a sensible state, the fix on staging once, nothing left', { timeout: 400_000 }, async (t) => {
  const a = await setupPipeline(t, faster());
  const { startScriptedModel } = await import('../support/scripted-model.ts');
  const model = await startScriptedModel();
  t.after(() => model.close());
  const home = join(a.dir, 'home-b');
  const cfg = JSON.parse(readFileSync(a.configPath, 'utf8')) as Record<string, unknown>;
  const configPath = join(a.dir, 'bugbot-b.config.json');
  writeFileSync(configPath, JSON.stringify({ ...cfg, home }));
  const b: PipelineEnv = { ...a, model, home, configPath, env: { ANTHROPIC_BASE_URL: model.url, ANTHROPIC_API_KEY: 'sk-scripted-test' } };
  for (const env of [a, b]) for (const [phase, steps] of Object.entries(happyForAnyRun(env))) env.model.script(phase, steps);
  const [bugA, bugB] = await Promise.all([startBugbot(t, { configPath: a.configPath, env: a.env }), startBugbot(t, { configPath, env: b.env })]);
  await Promise.all([fire(bugA), fire(bugB)]);
  const ends: Record<string, Row[]> = {};
  for (const [name, env, bug] of [['a', a, bugA], ['b', b, bugB]] as const) {
    await waitFor(async () => /^(pushed|failed|needs_human)$/.test((await api<{ ticket: { state: string } }>(bug, '/api/tickets/1')).ticket.state), 350_000, `home ${name}'s ticket to end`);
    ends[name] = readOutcomes(env.home) as Row[];
  }
  const summary = JSON.stringify(Object.fromEntries(Object.entries(ends).map(([k, rows]) => [k, rows.map((r) => ({ state: r.state, reason: r.reason, branch: r.branch }))])), null, 2);
  for (const rows of Object.values(ends)) {
    assert.equal(rows.at(-1)!.state, 'pushed', summary);
    // Claimed in the same second, the later worktree met the other home's branch: named as
    // such, never counted, and only its slot paused (the branch left alone).
    for (const r of rows.slice(0, -1)) {
      assert.match(r.reason, /^could not create the worktree: branch bot\/ticket-1-\S+ exists already in .*, made by another bugbot home working on this checkout .*; no ticket can cause this: requeued \(this attempt not counted, however often\), and this worker pauses$/, summary);
    }
  }
  assert.equal(a.target.originGit('log', '--format=%s', 'main..staging').split('\n').filter((s) => /fix|Show strays/i.test(s)).length >= 1, true);
  for (const env of [a, b]) await assertNothingLeft(env);
  assert.ok(existsSync(join(a.target.repo, '.git')));
});

/**
 * What the harness enforces that the agent can't, with the REAL Claude Code CLI:
 * banned actions denied before they run, idle kill, turn and budget limits.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { waitFor } from '../support/helpers.ts';
import { happyPathScripts, readOutcomes, setupPipeline, strayOwnerAlert, worktreeOf, type PipelineEnv } from '../support/pipeline.ts';
import { startBugbot } from '../support/process.ts';
import { say, tool, type Step } from '../support/scripted-model.ts';

async function runTicket(t: TestContext, env: PipelineEnv, timeoutMs = 150_000) {
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  const res = await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(strayOwnerAlert()) });
  assert.equal(res.status, 200);
  await waitFor(() => readOutcomes(env.home).length > 0, timeoutMs, 'the run to end');
  const row = readOutcomes(env.home)[0] as Record<string, unknown> & { outcome: string; reason: string; state: string; denials: Array<{ tool: string; by: string; reason?: string }> };
  const ticket = (await (await fetch(`${bugbot.url}/api/tickets/1`)).json()) as { ticket: { state: string } };
  return { bugbot, row, ticketState: ticket.ticket.state, ticketDir: join(env.home, 'tickets', '1', 'run-1') };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function assertCleanedUp(env: PipelineEnv, ticketDir: string): Promise<void> {
  assert.equal(existsSync(join(env.home, 'worktrees', 'ticket-1-run-1')), false, 'worktree removed');
  assert.doesNotMatch(env.target.git('worktree', 'list'), /ticket-1-run-1/);
  const port = JSON.parse(readFileSync(join(ticketDir, 'ticket.json'), 'utf8')).workspace.port as number;
  return portOpen(port).then((open) => assert.equal(open, false, 'dev server stopped'));
}

/** A marker folder outside everything the agent may touch; the banned commands aim at it. */
function markers(env: PipelineEnv): { dir: string; victim: string; pushed: string } {
  const dir = join(env.dir, 'markers');
  mkdirSync(join(dir, 'victim'), { recursive: true });
  writeFileSync(join(dir, 'victim', 'keep.txt'), 'must survive');
  return { dir, victim: join(dir, 'victim'), pushed: join(dir, 'pushed') };
}

function bannedAttempts(env: PipelineEnv, m: ReturnType<typeof markers>): Step[] {
  return [
    tool('Bash', { command: `git push --no-verify origin HEAD:main && touch ${m.pushed}`, description: 'push' }),
    tool('Bash', { command: `rm -rf ${m.victim}`, description: 'clean up' }),
    tool('Write', { file_path: join(worktreeOf(env), '.claude/settings.json'), content: '{"hooks":{}}' }),
  ];
}

test('banned actions are denied before they run; the run goes on and the outcome lists them', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t);
  const m = markers(env);
  const scripts = happyPathScripts(env);
  env.model.script('research', [...bannedAttempts(env, m), ...scripts.research!]);
  for (const p of ['implement', 'review', 'docs']) env.model.script(p, scripts[p]!);
  const { row, ticketState, ticketDir } = await runTicket(t, env);

  assert.equal(existsSync(m.pushed), false, 'the push command never ran');
  assert.equal(readFileSync(join(m.victim, 'keep.txt'), 'utf8'), 'must survive', 'rm -rf never ran');
  assert.equal(env.target.originGit('log', '--format=%s', 'main').split('\n').length, 1, 'nothing was pushed to main');
  assert.equal(ticketState, 'pushed', `the run continued: ${row.reason}`);
  const denied = row.denials.map((d) => `${d.tool}:${d.by}`);
  assert.ok(row.denials.some((d) => d.tool === 'Bash' && JSON.stringify(d).includes('git push')), JSON.stringify(row.denials));
  assert.ok(row.denials.some((d) => d.tool === 'Bash' && JSON.stringify(d).includes('rm -rf')), JSON.stringify(row.denials));
  assert.ok(
    row.denials.some((d) => d.tool === 'Write' && d.by === 'hook' && /\.claude\/settings\.json is protected/.test(d.reason ?? '')),
    denied.join(', '),
  );
  // The fix on staging does not carry the forbidden file.
  assert.doesNotMatch(env.target.originGit('show', '--stat', '--format=', 'staging~1'), /\.claude/);
  await assertCleanedUp(env, ticketDir);
});

// Review finding: the docs phase runs after review, and `git log --format=<code>
// --output=src/...` (its read-only git) wrote code that went out unreviewed. (Should some
// other way remain, worker.sh drops the docs commit when it changed anything outside docs/
// and CLAUDE.md.)
test('the docs phase cannot change code after review', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t);
  const scripts = happyPathScripts(env);
  for (const p of ['research', 'implement', 'review']) env.model.script(p, scripts[p]!);
  // After its own doc edit and commit (the last step is its closing words).
  const docs = scripts.docs!;
  env.model.script('docs', [
    tool('Bash', { command: 'git log -1 --format="tformat:export const x = 1;" --output=src/main.ts', description: 'rewrite code' }),
    ...docs.slice(0, -1),
    // A read-only command's output redirected into the code.
    tool('Bash', { command: 'git show HEAD:src/pets.ts > src/copy.ts', description: 'copy' }),
    docs.at(-1)!,
  ]);
  const { row, ticketState, ticketDir } = await runTicket(t, env);
  assert.equal(ticketState, 'pushed', row.reason);
  assert.ok(row.denials.some((d) => d.tool === 'Bash' && /--output writes a file/.test(d.reason ?? '')), JSON.stringify(row.denials));
  // Claude Code itself refuses the redirect (outside its write roots for Bash).
  assert.match(readFileSync(join(ticketDir, 'stage-docs.jsonl'), 'utf8'), /Output redirection to '[^']*src\/copy\.ts' was blocked/);
  assert.equal(env.target.originGit('ls-tree', 'staging', 'src/copy.ts'), '', 'not on staging');
  assert.doesNotMatch(env.target.originGit('show', 'staging:src/main.ts'), /export const x = 1;/);
  assert.match(env.target.originGit('log', '--format=%s', 'staging'), /docs: strays have no owner/, 'the doc edit went out');
  await assertCleanedUp(env, ticketDir);
});

test('with onBannedAction "kill", the first banned attempt ends the run', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t, { harness: { onBannedAction: 'kill', idleTimeoutSeconds: 60, heartbeatSeconds: 1 } } as ConfigFile);
  const m = markers(env);
  env.model.script('research', [...bannedAttempts(env, m), say('unreachable')]);
  const { row, ticketState, ticketDir } = await runTicket(t, env);
  assert.equal(ticketState, 'failed');
  assert.equal(row.outcome, 'failed');
  assert.match(row.reason, /research: banned action attempted: bugbot guard: .*(push|--no-verify)/);
  assert.equal(existsSync(m.pushed), false);
  await assertCleanedUp(env, ticketDir);
});

// A model that stops answering is the endpoint's trouble, as one refusing is: the run is
// the machine's (requeued, the workers pause), not counted against the ticket.
test('a stalled model is killed after the idle limit as the machine\'s trouble: requeued, not counted; everything cleaned up', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t, { harness: { idleTimeoutSeconds: 10, heartbeatSeconds: 1 } } as ConfigFile);
  const scripts = happyPathScripts(env);
  env.model.script('research', scripts.research!);
  env.model.script('implement', [{ stall: true }]);
  const started = Date.now();
  const { row, ticketState, ticketDir } = await runTicket(t, env);
  assert.equal(ticketState, 'queued', row.reason);
  assert.equal(row.outcome, 'failed');
  assert.match(row.reason, /^implement: idle: no answer from the model for 10 s \(its endpoint stopped answering\); the machine could not host it: requeued \(this attempt not counted\)/);
  const implement = JSON.parse(readFileSync(join(ticketDir, 'stats-implement.json'), 'utf8')) as { duration_s: number; killed: string; ready_at: string | null; finished: string };
  // From the session's first event (its start-up is not idling, and takes longer on a busy
  // machine) to its end: the 10 s limit, then the kill and its grace.
  assert.ok(implement.ready_at, 'the session started');
  const idleToEnd = (Date.parse(implement.finished) - Date.parse(implement.ready_at)) / 1000;
  assert.ok(idleToEnd >= 9 && idleToEnd < 20, `killed within the limit (${idleToEnd} s after its first event; ${implement.duration_s} s in all)`);
  assert.ok(Date.now() - started < 120_000);
  await assertCleanedUp(env, ticketDir);
});

// Silent while a tool call of its own runs: the session's doing, counted against the ticket.
test('a session silent while its own command runs is killed after the idle limit and fails the ticket', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t, { harness: { idleTimeoutSeconds: 10, heartbeatSeconds: 1 } } as ConfigFile);
  const scripts = happyPathScripts(env);
  env.model.script('research', scripts.research!);
  env.model.script('implement', [tool('Bash', { command: 'sleep 60', description: 'wait' }), say('unreachable')]);
  const { row, ticketState, ticketDir } = await runTicket(t, env);
  assert.equal(ticketState, 'failed', row.reason);
  assert.match(row.reason, /^implement: idle: no stream event for 10 s/);
  await assertCleanedUp(env, ticketDir);
});

test('max turns: failed with error_max_turns, partial work kept on its branch', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t, { harness: { idleTimeoutSeconds: 60, heartbeatSeconds: 1, phases: { implement: { maxTurns: 3 } } } } as ConfigFile);
  const scripts = happyPathScripts(env);
  env.model.script('research', scripts.research!);
  const pets = join(worktreeOf(env), 'src/pets.ts');
  env.model.script('implement', [
    tool('Read', { file_path: pets }),
    tool('Edit', { file_path: pets, old_string: 'ownerName: pet.owner!.name', new_string: 'ownerName: pet.owner?.name ?? null' }),
    tool('Read', { file_path: pets }),
    tool('Read', { file_path: pets }),
    tool('Read', { file_path: pets }),
  ]);
  const { row, ticketState, ticketDir } = await runTicket(t, env);
  assert.equal(ticketState, 'failed');
  assert.match(row.reason, /implement: error_max_turns/);
  const branch = row.branch as string;
  assert.match(env.target.git('show', `${branch}:src/pets.ts`), /pet\.owner\?\.name \?\? null/, 'partial work is on the branch');
  await assertCleanedUp(env, ticketDir);
});

test('budget: failed with error_max_budget_usd', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t, { harness: { idleTimeoutSeconds: 60, heartbeatSeconds: 1, phases: { research: { maxBudgetUsd: 0.01 } } } } as ConfigFile);
  const readme = join(worktreeOf(env), 'CLAUDE.md');
  env.model.script('research', Array.from({ length: 8 }, () => tool('Read', { file_path: readme })));
  const { row, ticketState } = await runTicket(t, env);
  assert.equal(ticketState, 'failed');
  assert.match(row.reason, /research: error_max_budget_usd/);
});

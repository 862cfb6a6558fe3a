/**
 * Faults, with the REAL Claude Code CLI and real processes: the model endpoint failing
 * (529, timeouts, a transient 500), an MCP server crashing mid-session (the next call
 * errors or the CLI starts the server again; its Chromium must not outlive it), a worker
 * killed mid-phase, the push rejected. Each ends in a defined state with a clear
 * reason, no lost ticket, and no worktree, dev server, Claude session or browser left.
 * (kill -9 of the control plane: crash.test.ts and dispatch.test.ts; a full disk:
 * disk-full.test.ts.)
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { waitFor } from '../support/helpers.ts';
import { happyPathScripts, readOutcomes, setupPipeline, strayOwnerAlert, type PipelineEnv } from '../support/pipeline.ts';
import { startBugbot, type BugbotProcess } from '../support/process.ts';
import { alive, descendants, mcpServerCommand, portOpen, processes } from '../support/procs.ts';
import { say, tool, type Step } from '../support/scripted-model.ts';

type Row = Record<string, unknown> & { outcome: string; reason: string; state: string; attempt: number };

async function fire(t: TestContext, env: PipelineEnv): Promise<BugbotProcess> {
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  const res = await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(strayOwnerAlert()) });
  assert.equal(res.status, 200);
  return bugbot;
}

async function ticketState(bugbot: BugbotProcess): Promise<string> {
  const body = (await (await fetch(`${bugbot.url}/api/tickets/1`)).json()) as { ticket: { state: string } };
  return body.ticket.state;
}

async function outcomeRow(env: PipelineEnv, n = 1, timeoutMs = 150_000): Promise<Row> {
  await waitFor(() => readOutcomes(env.home).length >= n, timeoutMs, `outcome row ${n}`);
  return readOutcomes(env.home)[n - 1] as Row;
}

/** Nothing of run N of ticket 1 is left: worktree, dev server, processes naming its folder. */
async function assertNothingLeft(env: PipelineEnv, run = 1): Promise<void> {
  const ticketDir = join(env.home, 'tickets', '1', `run-${run}`);
  await waitFor(() => !processes().some((p) => p.cmd.includes(ticketDir)), 15_000, `no process of run ${run} left`);
  // A worker that died without its trap has its worktree removed in the background.
  await waitFor(() => !existsSync(join(env.home, 'worktrees', `ticket-1-run-${run}`)), 15_000, 'worktree removed');
  await waitFor(() => !new RegExp(`ticket-1-run-${run}\\b`).test(env.target.git('worktree', 'list')), 15_000, 'worktree pruned');
  const port = JSON.parse(readFileSync(join(ticketDir, 'ticket.json'), 'utf8')).workspace.port as number;
  assert.equal(await portOpen(port), false, 'dev server stopped');
}

/** A scripted step aimed at another worktree (function steps find theirs from the request). */
function retarget(step: Step, from: string, to: string): Step {
  return typeof step === 'function' ? step : (JSON.parse(JSON.stringify(step).replaceAll(from, to)) as Step);
}

const faster = (flags: Record<string, unknown> = {}): ConfigFile =>
  ({ harness: { idleTimeoutSeconds: 60, heartbeatSeconds: 1, ...flags } }) as ConfigFile;

// Review finding: an endpoint outage (or a wrong URL) failed every queued ticket at its first
// attempt; it is the machine's problem, as a port taken is: requeued, not counted, workers paused.
test('the model answering 529 on every try: the phase fails after the configured retries, with the API error as the reason; the ticket waits for the endpoint, its attempt not counted', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t, faster({ modelRetries: 1 }));
  env.model.script('research', [{ status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } }]);
  const bugbot = await fire(t, env);
  const row = await outcomeRow(env);
  assert.equal(row.outcome, 'failed');
  assert.equal(row.state, 'queued');
  assert.equal(await ticketState(bugbot), 'queued');
  assert.match(row.reason, /^research: /);
  assert.match(row.reason, /529|overloaded/i, row.reason);
  assert.match(row.reason, /requeued \(this attempt not counted\), and the workers pause$/);
  const { held } = (await (await fetch(`${bugbot.url}/api/workers`)).json()) as { held: string | null };
  assert.match(held ?? '', /^paused after a run the machine could not host \(research: /);
  const tries = env.model.requests.filter((r) => r.phase === 'research').length;
  assert.equal(tries, 2, `one request and modelRetries (1) retry, got ${tries}`);
  await assertNothingLeft(env);
});

test('a model request that takes longer than modelTimeoutSeconds is abandoned and retried, then the phase fails', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t, faster({ modelRetries: 1, modelTimeoutSeconds: 2 }));
  env.model.script('research', [{ delayMs: 20_000, then: say('too late') }]);
  const started = Date.now();
  const bugbot = await fire(t, env);
  const row = await outcomeRow(env);
  assert.equal(await ticketState(bugbot), 'queued', 'an endpoint that does not answer is no fault of the ticket');
  assert.match(row.reason, /^research: /);
  assert.match(row.reason, /time|abort/i, row.reason);
  assert.equal(env.model.requests.filter((r) => r.phase === 'research').length, 2);
  assert.ok(Date.now() - started < 60_000, 'ended by the request timeout, not the idle limit');
  await assertNothingLeft(env);
});

const BROWSER_SERVER = mcpServerCommand('browser');

test('a transient 500 is retried; an MCP server killed mid-session costs one call at most: the run still lands, no browser left', { timeout: 240_000 }, async (t) => {
  const env = await setupPipeline(t, faster());
  const happy = happyPathScripts(env);
  const ticketDir = join(env.home, 'tickets', '1', 'run-1');
  let failedOnce = false;
  const chromium: number[] = [];
  let killedServer = 0;
  let restartedServer = 0;
  const research: Step[] = [
    tool('mcp__browser__browser_navigate', { url: '/api/pets' }),
    () => {
      // The browser server (and its Chromium) runs; kill -9 the server itself.
      const server = processes().find((p) => BROWSER_SERVER.test(p.cmd) && p.cmd.includes(ticketDir));
      assert.ok(server, 'the browser MCP server of this run is running');
      chromium.push(...descendants(server.pid).filter((p) => /chrom/i.test(p.cmd)).map((p) => p.pid));
      process.kill(server.pid, 'SIGKILL');
      killedServer = server.pid;
      return tool('mcp__browser__browser_navigate', { url: '/api/pets/5' });
    },
    () => {
      restartedServer = processes().find((p) => BROWSER_SERVER.test(p.cmd) && p.cmd.includes(ticketDir))?.pid ?? 0;
      return happy.research![0]!;
    },
    ...happy.research!.slice(1),
  ];
  env.model.script('research', research);
  env.model.script('implement', [
    () => {
      if (!failedOnce) {
        failedOnce = true;
        return { status: 500, body: { type: 'error', error: { type: 'api_error', message: 'Internal server error' } } };
      }
      return happy.implement![0]!;
    },
    ...happy.implement!.slice(1),
  ]);
  for (const p of ['review', 'docs']) env.model.script(p, happy[p]!);
  const bugbot = await fire(t, env);
  const row = await outcomeRow(env);
  assert.equal(await ticketState(bugbot), 'pushed', row.reason);
  assert.ok(killedServer > 0 && !alive(killedServer));
  assert.ok(chromium.length > 0, 'Chromium was running under the browser server');
  for (const pid of chromium) assert.equal(alive(pid), false, `Chromium ${pid} exited with its server`);
  // The call after the crash did not hang: depending on timing, Claude Code either started
  // the server again (a new process answered) or returned an error result.
  const afterCrash = env.model.requests.find((r) => r.phase === 'research' && r.turn === 2);
  const toolResults = (afterCrash?.body.messages ?? []).flatMap((m) => (Array.isArray(m.content) ? m.content.filter((b) => b.type === 'tool_result') : []));
  const last = toolResults.at(-1) as { is_error?: boolean } | undefined;
  const results = JSON.stringify(last ?? 'no tool result');
  if (last?.is_error) assert.match(results, /browser|connect|closed|not/i, results.slice(0, 400));
  else {
    assert.match(results, /Opened http:\/\/127\.0\.0\.1:\d+\/api\/pets\/5/, results.slice(0, 400));
    assert.ok(restartedServer !== killedServer, `the answer came from a new browser server, not ${killedServer}`);
  }
  assert.ok(failedOnce);
  const implementTries = env.model.requests.filter((r) => r.phase === 'implement' && r.turn === 0).length;
  assert.equal(implementTries, 2, 'the failed request was retried once');
  await assertNothingLeft(env);
});

test('a worker killed (kill -9) mid-phase: its session, MCP servers and dev server stop, the worktree goes, the ticket is requeued and lands', { timeout: 300_000 }, async (t) => {
  const env = await setupPipeline(t, faster());
  // The second attempt works in worktree ticket-1-run-2.
  const happy = Object.fromEntries(Object.entries(happyPathScripts(env)).map(([p, steps]) => [p, steps.map((s) => retarget(s, 'ticket-1-run-1', 'ticket-1-run-2'))]));
  let attempt = 0;
  env.model.script('research', [
    (req) => {
      // Attempt 1 hangs in the model call; attempt 2 (a new worktree) does the work.
      if (/ticket-1-run-1/.test(JSON.stringify(req.system ?? ''))) return { stall: true };
      attempt = 2;
      return happy.research![0]!;
    },
    ...happy.research!.slice(1),
  ]);
  for (const p of ['implement', 'review', 'docs']) env.model.script(p, happy[p]!);
  const bugbot = await fire(t, env);
  await waitFor(() => env.model.requests.some((r) => r.phase === 'research'), 90_000, 'research to start');
  const runs = ((await (await fetch(`${bugbot.url}/api/tickets/1`)).json()) as { runs: Array<{ pid: number }> }).runs;
  const workerPid = runs[0]!.pid;
  const session = descendants(workerPid);
  assert.ok(session.some((p) => /claude/.test(p.cmd)), 'a Claude session runs under the worker');
  process.kill(workerPid, 'SIGKILL');

  const first = await outcomeRow(env, 1, 30_000);
  assert.equal(first.outcome, 'failed');
  assert.match(first.reason, /worker exited \(SIGKILL\) without an outcome; requeued \(attempt 1 of 3\)/);
  await assertNothingLeft(env, 1);
  await waitFor(() => session.every((p) => !alive(p.pid)), 15_000, `the session's processes to stop: ${session.filter((p) => alive(p.pid)).map((p) => p.cmd.slice(0, 80)).join('; ')}`);

  const second = await outcomeRow(env, 2);
  assert.equal(attempt, 2);
  assert.equal(second.attempt, 2);
  assert.equal(await ticketState(bugbot), 'pushed', second.reason);
  assert.match(env.target.originGit('show', 'staging:src/pets.ts'), /pet\.owner\?\.name \?\? null/);
  await assertNothingLeft(env, 2);
});

test('a worker stopped by a SIGTERM from outside bugbot (a person, a service manager) is requeued like a crash, not failed as a cancel', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t, faster());
  env.model.script('research', [() => ({ stall: true })]);
  const bugbot = await fire(t, env);
  await waitFor(() => env.model.requests.some((r) => r.phase === 'research'), 90_000, 'research to start');
  const runs = ((await (await fetch(`${bugbot.url}/api/tickets/1`)).json()) as { runs: Array<{ pid: number }> }).runs;
  process.kill(runs[0]!.pid, 'SIGTERM');

  const first = await outcomeRow(env, 1, 30_000);
  assert.equal(first.outcome, 'failed');
  assert.match(first.reason, /^its worker was stopped from outside bugbot \(stopped by a signal \(SIGTERM or SIGINT\)\); requeued \(attempt 1 of 3\)/);
  await assertNothingLeft(env, 1);
});

test('a dev server that exits at once ends research without waiting on the model: failed naming the dev server', { timeout: 200_000 }, async (t) => {
  const env = await setupPipeline(t, faster());
  const cfg = JSON.parse(readFileSync(env.configPath, 'utf8')) as { target: Record<string, unknown> };
  cfg.target.devCommand = 'echo "Error: Cannot find module server.js" >&2; exit 1';
  writeFileSync(env.configPath, JSON.stringify(cfg));
  // The model would keep research busy for ten minutes.
  env.model.script('research', [{ delayMs: 600_000, then: say('too late') }]);
  const started = Date.now();
  await fire(t, env);
  const row = await outcomeRow(env);
  assert.equal(row.outcome, 'failed');
  assert.match(row.reason, /dev server did not listen on port \d+ .*or exited \(see devserver\.log\)/, row.reason);
  assert.ok(Date.now() - started < 90_000, `ended by the dead dev server, not a limit (${Date.now() - started} ms)`);
  assert.match(readFileSync(join(env.home, 'tickets', '1', 'run-1', 'devserver.log'), 'utf8'), /Cannot find module/);
  await assertNothingLeft(env);
});

test('the push rejected by the remote: failed naming the push, the work kept on its branch', { timeout: 240_000 }, async (t) => {
  const env = await setupPipeline(t, faster({ pushRetries: 2 }));
  const hook = join(env.target.origin, 'hooks', 'pre-receive');
  writeFileSync(hook, '#!/bin/sh\necho "staging is frozen" >&2\nexit 1\n');
  chmodSync(hook, 0o755);
  const happy = happyPathScripts(env);
  for (const p of ['research', 'implement', 'review', 'docs']) env.model.script(p, happy[p]!);
  const bugbot = await fire(t, env);
  const row = await outcomeRow(env);
  assert.equal(await ticketState(bugbot), 'failed');
  assert.match(row.reason, /push to staging failed after 2 attempts/);
  assert.throws(() => env.target.originGit('rev-parse', '--verify', 'refs/heads/staging'), 'nothing reached staging');
  const branch = String(row.branch);
  assert.match(env.target.git('show', `${branch}:src/pets.ts`), /pet\.owner\?\.name \?\? null/, 'the fix is kept on its branch');
  await assertNothingLeft(env);
});

test('kill -9 of the control plane while a worker goes on to push: the restart finishes the run as it ended (pushed, its outcome row), not a second attempt', { timeout: 300_000 }, async (t) => {
  const env = await setupPipeline(t, faster());
  for (const [phase, steps] of Object.entries(happyPathScripts(env))) env.model.script(phase, steps);
  let bugbot = await fire(t, env);
  await waitFor(() => env.model.requests.some((r) => r.phase === 'implement'), 120_000, 'implement to start');
  bugbot.proc.kill('SIGKILL');
  await bugbot.exited;
  // The worker outlives it and pushes on its own.
  const runDir = join(env.home, 'tickets', '1', 'run-1');
  await waitFor(() => existsSync(join(runDir, 'outcome.json')), 180_000, 'the orphaned worker to finish');
  const ended = JSON.parse(readFileSync(join(runDir, 'outcome.json'), 'utf8')) as { state: string; reason: string };
  assert.equal(ended.state, 'pushed', `${ended.reason}\n${readFileSync(join(runDir, 'worker.log'), 'utf8').slice(-3000)}`);
  assert.match(env.target.originGit('show', 'staging:src/pets.ts'), /pet\.owner\?\.name \?\? null/);

  bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  const detail = (await (await fetch(`${bugbot.url}/api/tickets/1`)).json()) as { ticket: { state: string; attempt: number }; runs: Array<{ state: string; reason: string }> };
  assert.equal(detail.ticket.state, 'pushed');
  assert.equal(detail.runs.length, 1, 'no second attempt at a bug already fixed');
  assert.equal(detail.runs[0]!.state, 'finished');
  assert.match(detail.runs[0]!.reason, /finished while the control plane was down/);
  const rows = readOutcomes(env.home);
  assert.equal(rows.length, 1);
  assert.match(String(rows[0]!.outcome), /^(clean|messy)$/);
  await assertNothingLeft(env, 1);
});

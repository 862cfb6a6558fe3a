/**
 * The dispatcher under load and failure, with the REAL Claude Code CLI:
 * ten tickets on eight workers, two workers pushing to staging at once, and a
 * kill -9 of the control plane in the middle of a run.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ConfigFile } from '../../control/config.ts';
import { waitFor } from '../support/helpers.ts';
import { promptOf, readOutcomes, setupPipeline, worktreeOf, type PipelineEnv } from '../support/pipeline.ts';
import { startBugbot } from '../support/process.ts';
import { say, tool, type MessagesRequest, type Step, type StepContext } from '../support/scripted-model.ts';

const LIGHT_DEV_SERVER = `node -e "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, '127.0.0.1')"`;

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function fileTicket(url: string, title: string, message: string): Promise<number> {
  const res = await fetch(`${url}/api/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title, message, service: 'petshop' }) });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { ticket: { id: number } }).ticket.id;
}

function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) out.push(Number(pid));
    } catch {
      // gone
    }
  }
  return out;
}

test('ten tickets on eight workers: never more than eight at once, distinct ports, no worktree left', { timeout: 300_000 }, async (t) => {
  const env = await setupPipeline(t, {
    workers: 8,
    harness: { idleTimeoutSeconds: 60, heartbeatSeconds: 1 },
  } as ConfigFile);
  const cfg = JSON.parse(readFileSync(env.configPath, 'utf8')) as { target: Record<string, unknown> };
  cfg.target.devCommand = LIGHT_DEV_SERVER;
  (await import('node:fs')).writeFileSync(env.configPath, JSON.stringify(cfg));
  // Research takes a few seconds and writes no plan: each run ends failed, which is fine here.
  env.model.script('research', [{ delayMs: 4000, then: say('Nothing to plan.') }]);
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  for (let i = 0; i < 10; i++) await fileTicket(bugbot.url, `Report number ${'abcdefghij'[i]}`, `Page ${'abcdefghij'[i]} is broken for everyone`);

  let maxBusy = 0;
  const seenPorts = new Map<number, number>();
  await waitFor(
    async () => {
      const { workers } = (await (await fetch(`${bugbot.url}/api/workers`)).json()) as { workers: Array<{ ticket: number; port: number }> };
      maxBusy = Math.max(maxBusy, workers.length);
      const ports = workers.map((w) => w.port);
      assert.equal(new Set(ports).size, ports.length, `two workers share a port: ${ports.join(',')}`);
      for (const w of workers) seenPorts.set(w.ticket, w.port);
      return readOutcomes(env.home).length === 10;
    },
    240_000,
    'ten outcome rows',
  );
  assert.ok(maxBusy <= 8, `at most 8 busy (saw ${maxBusy})`);
  assert.ok(maxBusy >= 2, `runs overlapped (saw ${maxBusy})`);
  const rows = readOutcomes(env.home) as Array<{ ticket_id: number; worker: number; reason: string }>;
  assert.equal(new Set(rows.map((r) => r.ticket_id)).size, 10);
  assert.ok(rows.every((r) => r.worker >= 1 && r.worker <= 8));
  assert.ok(rows.every((r) => /research finished without writing plan\.md/.test(r.reason)), rows.map((r) => r.reason).join('\n'));
  const left = existsSync(join(env.home, 'worktrees')) ? readdirSync(join(env.home, 'worktrees')) : [];
  assert.deepEqual(left, [], 'all worktrees removed');
  assert.equal(env.target.git('worktree', 'list').split('\n').length, 1);
});

/** Scripts that fix whichever bug the ticket is about, chosen from the prompt. */
function twoBugScripts(env: PipelineEnv, conflict: boolean): Record<string, Step[]> {
  // By the ticket's title line (the pre-context may mention payments for any ticket).
  const isPayments = (req: MessagesRequest) => /^# Ticket \d+: .*Second payment/m.test(promptOf(req));
  const edit = (file: string, from: string, to: string): Step[] => [
    (req) => tool('Read', { file_path: join(worktreeOf(env, req), file) }),
    (req) => tool('Edit', { file_path: join(worktreeOf(env, req), file), old_string: from, new_string: to }),
    tool('Bash', { command: 'git add -A && git commit -m "fix"', description: 'commit' }),
    say('done'),
  ];
  const pets = edit('src/pets.ts', 'ownerName: pet.owner!.name', 'ownerName: pet.owner?.name ?? null');
  const payments = conflict
    ? edit('src/pets.ts', 'ownerName: pet.owner!.name', "ownerName: pet.owner ? pet.owner.name : 'nobody'")
    : edit('src/payments.ts', 'p.customerId === customer_id', 'p.transactionId === transaction_id');
  const implement: Step[] = pets.map((step, i) => (req: MessagesRequest, ctx: StepContext) => {
    const s = isPayments(req) ? payments[i]! : step;
    return typeof s === 'function' ? s(req, ctx) : s;
  });
  return {
    research: [
      (req) => tool('Write', { file_path: /writes its plan to: `([^`]+)`/.exec(promptOf(req))![1]!, content: '## Root cause\nSee the ticket.\n' }),
      { delayMs: 500, then: say('Planned.') },
    ],
    implement,
    review: [tool('StructuredOutput', { verdict: 'approved', reasons: [], edits: 0 }), say('ok')],
    docs: [say('No docs change needed.')],
  };
}

async function twoAtOnce(t: TestContext, conflict: boolean) {
  const env = await setupPipeline(t, { workers: 2, harness: { idleTimeoutSeconds: 60, heartbeatSeconds: 1 } } as ConfigFile);
  for (const [p, s] of Object.entries(twoBugScripts(env, conflict))) env.model.script(p, s);
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  await fileTicket(bugbot.url, 'Strays crash the pet page', 'GET /api/pets/5 fails: owner is undefined');
  await fileTicket(bugbot.url, 'Second payment marked duplicate', 'A customer paying twice gets payment recorded as duplicate');
  await waitFor(() => readOutcomes(env.home).length === 2, 200_000, 'both runs to end');
  return { env, rows: readOutcomes(env.home) as Array<{ ticket_id: number; state: string; reason: string; outcome: string }> };
}

test('two workers pushing to staging at once: both land (rebase + retry)', { timeout: 300_000 }, async (t) => {
  const { env, rows } = await twoAtOnce(t, false);
  assert.deepEqual(rows.map((r) => r.state).sort(), ['pushed', 'pushed'], rows.map((r) => r.reason).join('\n'));
  const files = env.target.originGit('log', '--name-only', '--format=', 'staging');
  assert.match(files, /src\/pets\.ts/);
  assert.match(files, /src\/payments\.ts/);
});

test('two workers changing the same line: one lands, the other needs a person with the conflict named', { timeout: 300_000 }, async (t) => {
  const { rows } = await twoAtOnce(t, true);
  const states = rows.map((r) => r.state).sort();
  assert.deepEqual(states, ['needs_human', 'pushed'], rows.map((r) => `${r.state}: ${r.reason}`).join('\n'));
  const loser = rows.find((r) => r.state === 'needs_human')!;
  assert.match(loser.reason, /conflicts in: src\/pets\.ts/);
});

/**
 * A control plane whose ticket's first attempt sits in research (a model call that never
 * comes back); the second attempt goes through. Returns once research is waiting.
 */
async function midResearch(t: TestContext): Promise<{ env: PipelineEnv; bugbot: Awaited<ReturnType<typeof startBugbot>>; runDir: string }> {
  const env = await setupPipeline(t, { harness: { idleTimeoutSeconds: 120, heartbeatSeconds: 1 } } as ConfigFile);
  const cfg = JSON.parse(readFileSync(env.configPath, 'utf8')) as { target: Record<string, unknown> };
  cfg.target.devCommand = LIGHT_DEV_SERVER;
  (await import('node:fs')).writeFileSync(env.configPath, JSON.stringify(cfg));
  let researchCalls = 0;
  env.model.script('research', [
    () => (++researchCalls === 1 ? { delayMs: 600_000, then: say('too late') } : say('No plan this time.')),
  ]);
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  await fileTicket(bugbot.url, 'Strays crash the pet page', 'GET /api/pets/5 fails: owner is undefined');
  await waitFor(() => env.model.requests.some((r) => r.phase === 'research'), 60_000, 'research to call the model');
  return { env, bugbot, runDir: join(env.home, 'tickets', '1', 'run-1') };
}

/** Ticket 1 once its second attempt has finished. */
function secondAttempt(url: string) {
  return waitFor(
    async () => {
      const d = (await (await fetch(`${url}/api/tickets/1`)).json()) as { ticket: { state: string; attempt: number }; runs: Array<{ id: number; state: string; reason: string }> };
      return d.runs.length >= 2 && d.runs[1]!.state !== 'running' ? d : undefined;
    },
    120_000,
    'the requeued second attempt to finish',
  );
}

test('kill -9 of the control plane mid-run: the run is reconciled, no orphan worktree or dev server', { timeout: 300_000 }, async (t) => {
  // Mid-phase: the first attempt's research session is waiting on the model.
  const mid = await midResearch(t);
  const { env, runDir } = mid;
  let bugbot = mid.bugbot;
  const port = JSON.parse(readFileSync(join(runDir, 'ticket.json'), 'utf8')).workspace.port as number;
  // It starts once the session is up, so it may still be coming up.
  await waitFor(() => portOpen(port), 30_000, 'the dev server to listen');

  bugbot.proc.kill('SIGKILL');
  await bugbot.exited;
  assert.ok(processesMentioning(runDir).length > 0, 'the worker outlived the control plane (its orphans are what reconcile must stop)');

  bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  const detail = await secondAttempt(bugbot.url).catch((err: Error) => {
    throw new Error(`${err.message}\nmodel requests: ${JSON.stringify(env.model.requests.map((r) => [r.phase, r.turn]))}\nbugbot: ${bugbot.output().slice(-2000)}`);
  });
  assert.equal(detail.runs[0]!.state, 'lost');
  assert.match(detail.runs[0]!.reason, /control plane restarted \(attempt 1 of 3\)/);
  assert.equal(detail.ticket.attempt, 2, 'requeued within the attempt limit');
  await waitFor(() => processesMentioning(runDir).length === 0, 10_000, 'the first run\'s processes to be gone');
  assert.equal(await portOpen(port), false, 'the first run\'s dev server is gone');
  assert.equal(existsSync(join(env.home, 'worktrees', 'ticket-1-run-1')), false, 'the first run\'s worktree is gone');
  assert.doesNotMatch(env.target.git('worktree', 'list'), /ticket-1-run-1/);
});

// Review finding: each deploy during a run used an attempt; three failed a healthy ticket.
test('a graceful stop of the control plane mid-run (SIGTERM: a restart, a deploy) requeues the ticket instead of failing it, with the attempt not counted', { timeout: 300_000 }, async (t) => {
  const mid = await midResearch(t);
  const { env, runDir } = mid;
  let bugbot = mid.bugbot;

  bugbot.proc.kill('SIGTERM');
  assert.equal((await bugbot.exited).code, 0, bugbot.output().slice(-2000));
  assert.equal(processesMentioning(runDir).length, 0, 'the worker cleaned up before the control plane exited');
  assert.equal(existsSync(join(env.home, 'worktrees', 'ticket-1-run-1')), false, 'its worktree is gone');

  bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  const detail = await secondAttempt(bugbot.url);
  assert.match(detail.runs[0]!.reason, /stopped with the control plane mid-run; requeued \(this attempt not counted\)/);
  assert.equal(detail.ticket.attempt, 1, 'another run, its first attempt still: not a failed ticket, nor one closer to it');
});

/**
 * The whole loop with the REAL Claude Code CLI (scripted model): a Grafana alert
 * for an examples/ bug → ticket → worker → all six phases → the fix on `staging`
 * of a bare origin, and a clean outcome row with per-stage numbers from the stream.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../support/helpers.ts';
import { happyPathScripts, promptOf, readOutcomes, setupPipeline, strayOwnerAlert, worktreeOf } from '../support/pipeline.ts';
import { runTmpRoot } from '../../control/dispatcher/workspace.ts';
import { startBugbot } from '../support/process.ts';
import { say, tool, type MessagesRequest } from '../support/scripted-model.ts';


function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('alert → six phases with the real Claude Code CLI → fix on staging, clean outcome', { timeout: 240_000 }, async (t) => {
  const env = await setupPipeline(t);
  for (const [phase, steps] of Object.entries(happyPathScripts(env))) env.model.script(phase, steps);
  // The temp folder bugbot is started with, which Claude Code would litter without the run's own.
  const systemTmp = join(env.dir, 'system-tmp');
  mkdirSync(systemTmp);
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: { ...env.env, TMPDIR: systemTmp } });

  // With it, a second error of the pet shop (its cascade: one webhook, as Grafana groups
  // the alerts of a rule): held while ticket 1 is worked on, shown in its brief; one run, not two.
  const body = strayOwnerAlert() as { alerts: Array<{ labels: Record<string, string>; annotations: Record<string, string>; fingerprint: string }> };
  const cascade = structuredClone(body.alerts[0]!);
  cascade.labels.route = '/api/orders/7';
  cascade.annotations = { summary: 'Unhandled error on GET /api/orders/:id', message: 'ReferenceError: inventory is not defined' };
  cascade.fingerprint = `cascade-${Date.now()}`;
  body.alerts.push(cascade);
  const res = await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.clone().text());
  const accepted = (await res.json()) as { results: Array<{ ticket: number; state: string; reason: string }> };
  assert.deepEqual(accepted.results.map((r) => [r.ticket, r.state]), [[1, 'queued'], [2, 'deferred']]);
  assert.match(accepted.results[1]!.reason, /^held in the cascade of ticket 1 /);

  const final = await waitFor(
    async () => {
      const r = (await (await fetch(`${bugbot.url}/api/tickets/1`)).json()) as { ticket?: { state: string } };
      return r.ticket && ['pushed', 'failed', 'needs_human'].includes(r.ticket.state) ? r : undefined;
    },
    200_000,
    'the ticket to finish',
  );
  const ticketDir = join(env.home, 'tickets', '1', 'run-1');
  const diag = () => `\nbugbot:\n${bugbot.output().slice(-3000)}\nstatus:\n${safeRead(join(ticketDir, 'status'))}\nresult: ${safeRead(join(ticketDir, 'result'))}`;
  assert.equal((final.ticket as { state: string }).state, 'pushed', diag());

  // The fix is on staging in the bare origin, and the bug's failing test now passes there.
  const staging = env.target.originGit('log', '--format=%s', 'staging');
  assert.match(staging, /Show strays with ownerName null/);
  assert.match(staging, /docs: strays have no owner/);
  const clone = mkdtempSync(join(tmpdir(), 'bugbot-staging-'));
  t.after(() => execFileSync('rm', ['-rf', clone]));
  execFileSync('git', ['clone', '--quiet', '--branch', 'staging', env.target.origin, clone]);
  execFileSync('cp', ['-al', join(env.target.repo, 'node_modules'), join(clone, 'node_modules')]);
  // Without NODE_TEST_CONTEXT, which would make the nested runner report to ours instead of stdout.
  const { NODE_TEST_CONTEXT: _ctx, ...plainEnv } = process.env;
  const petsTest = execFileSync('node', ['--import', 'tsx', '--test', 'test/pets.test.ts'], { cwd: clone, encoding: 'utf8', env: plainEnv });
  assert.match(petsTest, /# pass 3/);
  assert.match(readFileSync(join(clone, 'src/pets.ts'), 'utf8'), /pet\.owner\?\.name \?\? null/);

  // Every phase ran through the real CLI against the scripted model.
  const phases = new Set(env.model.requests.map((r) => r.phase).filter(Boolean));
  assert.deepEqual([...phases].sort(), ['docs', 'implement', 'research', 'review']);
  const research = promptOf(env.model.requests.find((r) => r.phase === 'research')!.body);
  assert.match(research, /## Errors held in this ticket's cascade[\s\S]*### Ticket 2: [\s\S]*ReferenceError: inventory is not defined/);
  const held = (await (await fetch(`${bugbot.url}/api/tickets/2`)).json()) as { ticket: { state: string }; related: unknown[] };
  assert.equal(held.ticket.state, 'deferred', 'held still: its error has not recurred since the fix');
  assert.deepEqual(held.related, [{ id: 1, relation: 'cascade_of', state: 'pushed' }]);
  // Every phase's prompt carries the repository's CLAUDE.md, its auto-load table with it.
  for (const phase of phases) {
    const first = env.model.requests.find((r) => r.phase === phase)!;
    assert.match(promptOf(first.body), /\| pets API, owners, strays \| docs\/pets-api\.md \|/, `${phase}'s prompt has the project notes`);
  }

  // The outcome row: clean, with non-zero per-stage tokens and tool calls from the stream.
  const rows = readOutcomes(env.home);
  assert.equal(rows.length, 1);
  const row = rows[0] as {
    outcome: string;
    state: string;
    commit: string;
    pushed_to: string;
    stages: Record<string, { tokens: number; tool_calls: number; duration_s: number }>;
    tests: { passed: number; failed: number; preexisting_failures: number };
    diff: { files: number };
    trigger_source: string;
  };
  assert.equal(row.outcome, 'clean', JSON.stringify(row));
  assert.equal(row.pushed_to, 'staging');
  assert.equal(row.commit, env.target.originGit('rev-parse', 'staging'));
  assert.equal(row.trigger_source, 'grafana');
  for (const stage of ['research', 'implement', 'review', 'docs']) {
    assert.ok(row.stages[stage]!.tokens > 0, `${stage} tokens`);
    assert.ok(row.stages[stage]!.tool_calls > 0, `${stage} tool calls`);
  }
  // The pet shop's two other open bugs still fail their tests, on the base branch too: they
  // do not block this fix, and the fixed test is no longer among the failures.
  assert.equal(row.tests.preexisting_failures, 2);
  assert.equal(row.tests.failed, 2);
  assert.equal(row.tests.passed, 5);
  assert.deepEqual(row.diff, { files: 2, insertions: 2, deletions: 2 }, 'only the fix and the doc: nothing of the sandbox or node_modules');

  // Each phase ended at its result event, and took its session's process group with it.
  for (const stage of ['research', 'implement', 'review', 'docs']) {
    const stats = JSON.parse(readFileSync(join(ticketDir, `stats-${stage}.json`), 'utf8')) as { ended_at_result: boolean; subtype: string };
    assert.equal(stats.ended_at_result, true, `${stage} ended at its result event`);
    assert.equal(stats.subtype, 'success');
  }
  const lastSession = Number(readFileSync(join(ticketDir, 'phase.pid'), 'utf8'));
  // Dead, that is: a zombie (killed, waiting for init to reap it once the phase's runner
  // exited) holds nothing. kill -0 would count it.
  const alive = execFileSync('ps', ['-eo', 'pgid=,stat=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => Number(l.trim().split(/\s+/)[0]) === lastSession && !/^\s*\d+\s+Z/.test(l));
  assert.deepEqual(alive, [], "the last session's process group is gone");

  // Cleaned up: no worktree, no dev server.
  assert.equal(existsSync(join(env.home, 'worktrees', 'ticket-1-run-1')), false, 'worktree removed');
  const port = JSON.parse(readFileSync(join(ticketDir, 'ticket.json'), 'utf8')).workspace.port as number;
  assert.equal(await portOpen(port), false, 'dev server stopped');
  assert.doesNotMatch(env.target.git('worktree', 'list'), /ticket-1-run-1/);
  // What Claude Code leaves after each session (its sandbox's mount points and proxy
  // sockets, its task output) went into the run's temp folder, and went with it.
  const root = runTmpRoot(env.home);
  assert.ok(root?.startsWith(`${systemTmp}/`), `the runs' temp root is in the temp folder bugbot was started with (${root})`);
  assert.deepEqual(readdirSync(root!), [], "the run's temp folder removed");
  assert.deepEqual(readdirSync(systemTmp).filter((n) => /^(claude|srt-|cc-)/.test(n)), [], 'nothing of Claude Code left in the temp folder bugbot was started with');
});

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '(none)';
  }
}

test('review asks for rework: implement runs once more with the reasons, the fix lands, the outcome is messy (tests failed first)', { timeout: 240_000 }, async (t) => {
  const env = await setupPipeline(t);
  const happy = happyPathScripts(env);
  const wt = (req: MessagesRequest) => worktreeOf(env, req);
  env.model.script('research', happy.research!);
  env.model.script('docs', happy.docs!);
  // The implement prompt of the rework carries the review's notes; the first attempt
  // "fixes" the stray by dropping every owner's name (a new failing test).
  const rework = (req: MessagesRequest) => promptOf(req).includes('The review asked for rework');
  env.model.script('implement', [
    (req) => tool('Read', { file_path: join(wt(req), 'src/pets.ts') }),
    (req) =>
      rework(req)
        ? tool('Edit', { file_path: join(wt(req), 'src/pets.ts'), old_string: 'ownerName: null', new_string: 'ownerName: pet.owner?.name ?? null' })
        : tool('Edit', { file_path: join(wt(req), 'src/pets.ts'), old_string: 'ownerName: pet.owner!.name', new_string: 'ownerName: null' }),
    (req) => say(rework(req) ? 'Owners keep their names now.' : 'Strays no longer throw.'),
  ]);
  // Review: the diff it is shown decides. The first verdict waits for the test gate on the
  // first attempt to finish (and fail) before the rework changes the code.
  const fixed = (req: MessagesRequest) => promptOf(req).includes('pet.owner?.name ?? null');
  const gateRc = join(env.home, 'tickets', '1', 'run-1', 'gate.rc');
  env.model.script('review', [
    (req) =>
      fixed(req)
        ? tool('StructuredOutput', { verdict: 'approved', reasons: [], edits: 0 })
        : { until: () => existsSync(gateRc) && readFileSync(gateRc, 'utf8').trim() !== '', then: tool('StructuredOutput', { verdict: 'needs-rework', reasons: ['owners lost their names: ownerName is now always null'], edits: 0 }) },
    say('Done.'),
  ]);
  const bugbot = await startBugbot(t, { configPath: env.configPath, env: env.env });
  const res = await fetch(`${bugbot.url}/triggers/grafana`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(strayOwnerAlert()) });
  assert.equal(res.status, 200);
  const ticketDir = join(env.home, 'tickets', '1', 'run-1');
  await waitFor(() => readOutcomes(env.home).length === 1, 200_000, 'the run to end');
  const row = readOutcomes(env.home)[0] as { outcome: string; state: string; reason: string };
  assert.equal(row.state, 'pushed', `${row.reason}\nstatus:\n${safeRead(join(ticketDir, 'status'))}`);

  // Both reviews and the rework ran, in order; the notes reached the rework's prompt.
  const labels = safeRead(join(ticketDir, 'status')).split('\n').filter((l) => l.includes('\tdone')).map((l) => l.split('\t')[1]);
  assert.deepEqual(labels.slice(0, 6), ['setup', 'docs-retrieval', 'research', 'implement', 'review', 'implement-rework']);
  assert.ok(labels.includes('review-rework'), labels.join(' '));
  assert.match(safeRead(join(ticketDir, 'agent', 'review-notes.md')), /owners lost their names/);
  assert.match(safeRead(join(ticketDir, 'prompt-implement-rework.md')), /owners lost their names/);

  // The first fix failed the test gate (a new failure), the reworked one passed it.
  assert.match(safeRead(join(ticketDir, 'push.env')), /^tests_first_try=false$/m);
  assert.equal(row.outcome, 'messy');
  assert.match(row.reason, /the first test gate found new failures/);
  assert.match(row.reason, /needed a rework loop/);
  assert.match(env.target.originGit('show', 'staging:src/pets.ts'), /ownerName: pet\.owner\?\.name \?\? null/);
});

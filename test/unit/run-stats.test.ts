// What a run's row says it did, read from what the harness saw: edits that happened (not
// edits asked for), the session's tokens when Claude Code stops on its budget, the tests'
// count from common runners' summaries; and what the archive keeps of the free text in a
// row (a kill's reason quotes the model's command) and of a row's revisions. The harness
// scripts run for real; a small script replays a stream where one stands in for the CLI.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildOutcomeRow, readOutcome } from '../../control/dispatcher/outcome.ts';
import { nextRevision, OutcomeArchive, type OutcomeRow } from '../../control/outcomes/archive.ts';
import type { RunRow } from '../../control/queue/leases.ts';
import type { Ticket } from '../../control/types.ts';
import { fixturePath, repoRoot, tempDir } from '../support/helpers.ts';

const RUN_PHASE = join(repoRoot, 'harness/lib/run-phase.mjs');
const OUTCOME = join(repoRoot, 'harness/lib/outcome.mjs');

interface Stats {
  edits: number;
  tokens: number;
  input_tokens: number;
  output_tokens: number;
  tool_calls: number;
  tools: Record<string, number>;
  cost_usd: number;
  cost_reported: boolean;
  killed?: string;
}

/** run-phase.mjs over a replayed stream (a file of stream-json lines), as the harness runs it. */
function watch(t: Parameters<typeof tempDir>[0], stream: string, phase = 'review', extra: string[] = []): { stats: Stats; dir: string } {
  const dir = tempDir(t);
  const worktree = join(dir, 'wt');
  mkdirSync(worktree);
  mkdirSync(join(dir, 'agent'));
  const policy = join(dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ phase, worktree, ticketDir: dir, ticketWrites: [], writeRoots: null, origins: ['http://127.0.0.1:3001'] }));
  const stats = join(dir, `stats-${phase}.json`);
  const r = spawnSync(
    process.execPath,
    [RUN_PHASE, '--phase', phase, '--log', join(dir, `${phase}.log`), '--stats', stats, '--ticket-dir', dir, '--policy', policy, '--worktree', worktree, ...extra, '--', 'cat', stream],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.ok(r.status !== null, r.stderr);
  return { stats: JSON.parse(readFileSync(stats, 'utf8')) as Stats, dir };
}

const line = (e: unknown) => JSON.stringify(e) + '\n';

test("review's edit count is of edits that happened: a denied or failed edit changed nothing", (t) => {
  const dir = tempDir(t);
  const stream = join(dir, 'stream.jsonl');
  const calls = Array.from({ length: 8 }, (_, i) => ({ type: 'tool_use', id: `e${i}`, name: i % 2 ? 'Write' : 'Edit', input: { file_path: `src/f${i}.ts`, old_string: 'a', new_string: 'b', content: 'x' } }));
  writeFileSync(
    stream,
    line({ type: 'system', subtype: 'init', mcp_servers: [] }) +
      line({ type: 'assistant', message: { model: 'm', usage: {}, content: calls } }) +
      // Six refused (a protected path, a string not found), two done.
      line({ type: 'user', message: { content: calls.map((c, i) => ({ type: 'tool_result', tool_use_id: c.id, is_error: i < 6, content: i < 6 ? 'denied' : 'ok' })) } }) +
      line({ type: 'result', subtype: 'success', is_error: false, num_turns: 2, total_cost_usd: 0.01, result: 'ok' }),
  );
  assert.equal(watch(t, stream).stats.edits, 2);
});

test("a budget stop's tokens are the session's (per-model usage), not the last message's (real CLI capture)", (t) => {
  // The result's `usage` says 100 in / 20 out; its `modelUsage`, the whole session, 200 / 40.
  const { stats } = watch(t, fixturePath('claude', 'real_cli_error_max_budget_usd.jsonl'), 'implement');
  assert.equal(stats.input_tokens, 200);
  assert.equal(stats.output_tokens, 40);
  assert.equal(stats.tokens, 240);
  // The other captures agree with what they say.
  assert.equal(watch(t, fixturePath('claude', 'real_cli_error_max_turns.jsonl'), 'implement').stats.tokens, 240);
  assert.equal(watch(t, fixturePath('claude', 'real_cli_success_with_permission_denials.jsonl'), 'implement').stats.tokens, 600);
});

test('a reply split into one event per content block counts its tokens once, and every tool call (review finding 1)', (t) => {
  const dir = tempDir(t);
  // Claude Code's stream-json: one assistant event per block of a reply, each with the
  // reply's id and its usage (reported as the reply starts).
  const usageA = { input_tokens: 1000, cache_read_input_tokens: 200, cache_creation_input_tokens: 50, output_tokens: 30 };
  const usageB = { input_tokens: 1400, output_tokens: 60 };
  const msgA = (content: object[]) => line({ type: 'assistant', message: { id: 'msg_A', model: 'm', usage: usageA, content } });
  const msgB = (content: object[]) => line({ type: 'assistant', message: { id: 'msg_B', model: 'm', usage: usageB, content } });
  const stream =
    line({ type: 'system', subtype: 'init', mcp_servers: [] }) +
    msgA([{ type: 'text', text: 'Looking at the handler.' }]) +
    msgA([{ type: 'tool_use', id: 'r1', name: 'Read', input: { file_path: 'src/a.ts' } }]) +
    msgA([{ type: 'tool_use', id: 'g1', name: 'Grep', input: { pattern: 'checkout' } }]) +
    line({ type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: 'r1', content: 'x' }, { type: 'tool_result', tool_use_id: 'g1', content: 'y' }] } }) +
    msgB([{ type: 'tool_use', id: 'r2', name: 'Read', input: { file_path: 'src/b.ts' } }]);
  const noResult = join(dir, 'no-result.jsonl');
  writeFileSync(noResult, stream);
  const { stats } = watch(t, noResult, 'research');
  assert.equal(stats.input_tokens, 1250 + 1400);
  assert.equal(stats.output_tokens, 30 + 60);
  assert.equal(stats.tokens, 1280 + 1460, 'msg_A once, msg_B once');
  assert.equal(stats.tool_calls, 3);
  assert.deepEqual(stats.tools, { Read: 2, Grep: 1 });

  // With a result, the session's totals stand (they are larger: the stream's output
  // tokens are a reply's at its start).
  const withResult = join(dir, 'result.jsonl');
  writeFileSync(
    withResult,
    stream + line({ type: 'result', subtype: 'success', is_error: false, num_turns: 2, total_cost_usd: 0.02, result: 'ok', usage: { input_tokens: 2650, output_tokens: 400 } }),
  );
  const done = watch(t, withResult, 'research').stats;
  assert.deepEqual([done.input_tokens, done.output_tokens, done.tokens, done.tool_calls], [2650, 400, 3050, 3]);
});

test("a session stopped before its result event says its cost is unknown, and so do its stage and the run's row (review finding 2)", (t) => {
  const dir = tempDir(t);
  const stream = join(dir, 'stream.jsonl');
  writeFileSync(
    stream,
    line({ type: 'system', subtype: 'init', mcp_servers: [] }) +
      line({ type: 'assistant', message: { id: 'msg_1', model: 'm', usage: { input_tokens: 500, output_tokens: 10 }, content: [{ type: 'tool_use', id: 'b1', name: 'Bash', input: { command: 'sleep 1' } }] } }),
  );
  // A research session that ended with its result, then an implement session killed idle:
  // the stand-in for the CLI prints a reply, then goes quiet.
  const research = watch(t, fixturePath('claude', 'real_cli_success_with_permission_denials.jsonl'), 'research');
  assert.equal(research.stats.cost_reported, true);
  const quiet = join(dir, 'quiet.sh');
  writeFileSync(quiet, `#!/bin/sh
cat '${stream}'
exec sleep 30
`, { mode: 0o755 });
  const killed = spawnSync(
    process.execPath,
    [RUN_PHASE, '--phase', 'implement', '--log', join(research.dir, 'implement.log'), '--stats', join(research.dir, 'stats-implement.json'), '--idle', '1', '--worktree', join(research.dir, 'wt'), '--', quiet],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(killed.status, 1, killed.stderr);
  const stats = JSON.parse(readFileSync(join(research.dir, 'stats-implement.json'), 'utf8')) as Stats;
  assert.match(stats.killed ?? '', /^idle/);
  assert.equal(stats.cost_usd, 0);
  assert.equal(stats.cost_reported, false);
  assert.equal(stats.tokens, 510);

  execFileSync(process.execPath, [OUTCOME, research.dir]);
  const outcome = readOutcome(research.dir)!;
  assert.equal(outcome.stages.research!.cost_reported, true);
  assert.equal(outcome.stages.implement!.cost_reported, false);
  assert.equal(outcome.stages.implement!.cost_usd, 0, 'what is known: nothing');
  const row = buildOutcomeRow({ ticket: { id: 1, fingerprint: 'f', source: 'manual', service: null, firstSeen: '2026-11-21T09:00:00.000Z' } as Ticket, run: { id: 1, attempt: 1, worker_id: 1, branch: null, started_at: '2026-11-21T10:00:00.000Z' } as RunRow, outcome, state: 'failed', reason: 'implement: idle', model: null });
  assert.equal(row.cost_reported, false);
  assert.equal(row.cost_usd, 0.003, "the research session's, reported");
});

/** outcome.mjs's test counts for a test log. */
function counts(t: Parameters<typeof tempDir>[0], log: string): { passed: number | null; failed: number | null } {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'tests.log'), log);
  execFileSync(process.execPath, [OUTCOME, dir]);
  const { passed, failed } = readOutcome(dir)!.tests;
  return { passed, failed };
}

test("the tests' count is read from the tests' summary line, not the suites' or files' before it", (t) => {
  const jest = 'PASS src/a.test.ts\nFAIL src/b.test.ts\n\nTest Suites: 1 failed, 2 passed, 3 total\nTests:       1 failed, 41 passed, 42 total\nSnapshots:   0 total\nTime:        1.2 s\n';
  assert.deepEqual(counts(t, jest), { passed: 41, failed: 1 });
  const vitest = ' ✓ src/a.test.ts (20 tests) 12ms\n\n Test Files  3 passed (3)\n      Tests  57 passed (57)\n   Start at  10:00:00\n';
  assert.deepEqual(counts(t, vitest), { passed: 57, failed: 0 });
  const pytest = 'tests/test_pay.py ..F\nlog: 3 passed through the queue\n==== 1 failed, 41 passed in 0.52s ====\n';
  assert.deepEqual(counts(t, pytest), { passed: 41, failed: 1 });
  const nodeTest = 'ℹ tests 12\nℹ suites 0\nℹ pass 11\nℹ fail 1\n';
  assert.deepEqual(counts(t, nodeTest), { passed: 11, failed: 1 });
  assert.deepEqual(counts(t, 'no summary here\n'), { passed: null, failed: null });
  // Several summaries: a workspace's packages (jest), cargo's unit tests then doc tests.
  const workspace = 'Tests:       1 failed, 4 passed, 5 total\n...\nTests:       3 passed, 3 total\n';
  assert.deepEqual(counts(t, workspace), { passed: 7, failed: 1 });
  const cargo = 'running 5 tests\ntest result: FAILED. 4 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n\n   Doc-tests shop\nrunning 0 tests\ntest result: ok. 0 passed; 0 failed; 0 ignored\n';
  assert.deepEqual(counts(t, cargo), { passed: 4, failed: 1 });
});

test("the archive redacts a stage's result (a kill's reason quotes the model's command) and the approver", (t) => {
  const a = new OutcomeArchive(tempDir(t));
  const key = 'sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefgh';
  a.append({
    run_id: 1,
    reason: 'failed',
    denials: [],
    stages: {
      research: { tokens: 1, tool_calls: 1, cost_usd: 0, duration_s: 1, result: 'success' },
      implement: { tokens: 1, tool_calls: 1, cost_usd: 0, duration_s: 1, result: `banned action attempted: may only fetch the dev server; http://127.0.0.1 ${key} is not a URL on it` },
    },
    approved_by: 'api:alice@corp.example',
  } as unknown as OutcomeRow);
  const text = readFileSync(a.path, 'utf8');
  assert.ok(!text.includes(key.slice(0, 20)), text);
  assert.ok(!text.includes('alice@corp.example'), text);
  const [row] = a.readAll();
  assert.equal(row!.stages.research!.result, 'success');
  assert.match(row!.stages.implement!.result!, /^banned action attempted: may only fetch the dev server; http:\/\/127\.0\.0\.1 \S+ is not a URL on it$/);
  assert.match(row!.approved_by!, /^api:<email:[0-9a-f]+>$/);
});

test("a run's next row is one revision past its last, a row written without one counting as the first", () => {
  assert.equal(nextRevision({ revision: 1 }), 2);
  assert.equal(nextRevision({ revision: 4 }), 5);
  assert.equal(nextRevision({} as OutcomeRow), 2);
  assert.equal(nextRevision({ revision: Number.NaN }), 2);
});

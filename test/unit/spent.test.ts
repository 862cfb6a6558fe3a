// A run that left no outcome.json (its worker killed, its control plane gone) still says
// in its outcome row what it had spent: the finished sessions' stats, summed as
// harness/lib/outcome.mjs sums them, and the tokens of the session under way.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildOutcomeRow, readOutcome, spentSoFar } from '../../control/dispatcher/outcome.ts';
import type { RunRow } from '../../control/queue/leases.ts';
import type { Ticket } from '../../control/types.ts';
import { repoRoot, tempDir } from '../support/helpers.ts';

const stats = (over: Record<string, unknown>) => ({
  phase: 'x', tokens: 0, tool_calls: 0, cost_usd: 0, duration_s: 0, num_turns: 0, subtype: 'success',
  started: '2026-11-21T10:00:00.000Z', finished: '2026-11-21T10:01:00.000Z', denials: [], ...over,
});
const ticket = { id: 7, fingerprint: 'f', source: 'grafana', service: 'petstore', firstSeen: '2026-11-21T09:00:00.000Z' } as Ticket;
const run = { id: 3, attempt: 1, worker_id: 2, branch: 'bot/ticket-7', started_at: '2026-11-21T10:00:00.000Z' } as RunRow;

test('no outcome.json: the row counts the finished sessions and the one under way, not 0', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'stats-research.json'), JSON.stringify(stats({ tokens: 1200, tool_calls: 4, cost_usd: 0.021, duration_s: 12.5, num_turns: 3 })));
  writeFileSync(join(dir, 'stats-implement.json'), JSON.stringify(stats({ tokens: 3000, tool_calls: 9, cost_usd: 0.05, duration_s: 40, num_turns: 7 })));
  writeFileSync(join(dir, 'stats-implement-rework.json'), JSON.stringify(stats({ tokens: 500, tool_calls: 1, cost_usd: 0.01, duration_s: 5, num_turns: 1 })));
  writeFileSync(join(dir, 'stats-review.json'), JSON.stringify(stats({ tokens: 800, tool_calls: 2, cost_usd: 0.012, duration_s: 8, num_turns: 2 })));
  // The rework's review was under way when the worker died.
  writeFileSync(join(dir, 'progress.json'), JSON.stringify({ phase: 'review', elapsed_s: 6, tokens: 450, tool_calls: 3, cost_usd: 0, last_tool: 'Read', done: false }));

  const row = buildOutcomeRow({ ticket, run, outcome: null, state: 'queued', reason: 'worker exited (SIGKILL) without an outcome', model: null, ticketDir: dir });
  assert.equal(row.outcome, 'failed');
  assert.equal(row.cost_usd, 0.093);
  assert.deepEqual(Object.keys(row.stages), ['research', 'implement', 'review']);
  assert.equal(row.stages.implement!.tokens, 3500, 'a rework pass is summed with the first');
  assert.equal(row.stages.review!.tokens, 1250, 'the session under way adds its tokens');
  assert.equal(row.stages.review!.tool_calls, 5);
  assert.equal(row.stages.review!.result, 'stopped mid-session');

  // The snapshot a session leaves when it is over (done) is already in its stats file.
  writeFileSync(join(dir, 'progress.json'), JSON.stringify({ phase: 'review', elapsed_s: 8, tokens: 800, tool_calls: 2, cost_usd: 0.012, last_tool: null, done: true }));
  const after = spentSoFar(dir);
  assert.equal(after.stages.review!.tokens, 800);
  assert.equal(after.cost_usd, 0.093);

  // The same sums as the harness's own outcome.json (harness/lib/outcome.mjs).
  execFileSync(process.execPath, [join(repoRoot, 'harness/lib/outcome.mjs'), dir]);
  const harness = readOutcome(dir)!;
  assert.equal(harness.cost_usd, after.cost_usd);
  for (const [phase, s] of Object.entries(after.stages)) {
    const h = harness.stages[phase as keyof typeof harness.stages]!;
    assert.deepEqual(
      { tokens: s.tokens, tool_calls: s.tool_calls, cost_usd: s.cost_usd, duration_s: s.duration_s, turns: s.turns },
      { tokens: h.tokens, tool_calls: h.tool_calls, cost_usd: h.cost_usd, duration_s: h.duration_s, turns: h.turns },
      phase,
    );
  }
});

test('no outcome.json and nothing written yet: an empty row, cost 0', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'progress.json'), '{torn');
  const row = buildOutcomeRow({ ticket, run, outcome: null, state: 'failed', reason: 'x', model: null, ticketDir: dir });
  assert.deepEqual(row.stages, {});
  assert.equal(row.cost_usd, 0);
  const gone = buildOutcomeRow({ ticket, run, outcome: null, state: 'failed', reason: 'x', model: null, ticketDir: join(dir, 'missing') });
  assert.equal(gone.cost_usd, 0);
});

test("no outcome.json: a session under way or killed before its result leaves its stage's and the run's cost unknown in part (review finding 2)", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'stats-research.json'), JSON.stringify(stats({ tokens: 1200, cost_usd: 0.021, cost_reported: true })));
  // Killed idle: no result event, so no cost.
  writeFileSync(join(dir, 'stats-implement.json'), JSON.stringify(stats({ tokens: 3000, cost_usd: 0, cost_reported: false, subtype: null, killed: 'idle: no stream event for 300 s' })));
  let row = buildOutcomeRow({ ticket, run, outcome: null, state: 'failed', reason: 'x', model: null, ticketDir: dir });
  assert.equal(row.stages.research!.cost_reported, true);
  assert.equal(row.stages.implement!.cost_reported, false);
  assert.equal(row.cost_reported, false);
  assert.equal(row.cost_usd, 0.021, 'what is known');

  // A stats file from before the flag: a session without a result reported no cost.
  writeFileSync(join(dir, 'stats-implement.json'), JSON.stringify({ ...stats({ tokens: 3000, subtype: null }), cost_reported: undefined }));
  assert.equal(spentSoFar(dir).stages.implement!.cost_reported, false);
  writeFileSync(join(dir, 'stats-implement.json'), JSON.stringify(stats({ tokens: 3000, cost_usd: 0.05 })));
  row = buildOutcomeRow({ ticket, run, outcome: null, state: 'failed', reason: 'x', model: null, ticketDir: dir });
  assert.equal(row.cost_reported, true);

  // The session under way when the worker died: its cost is never reported.
  writeFileSync(join(dir, 'progress.json'), JSON.stringify({ phase: 'review', elapsed_s: 6, tokens: 450, tool_calls: 3, cost_usd: 0, done: false }));
  row = buildOutcomeRow({ ticket, run, outcome: null, state: 'queued', reason: 'x', model: null, ticketDir: dir });
  assert.equal(row.stages.review!.cost_reported, false);
  assert.equal(row.cost_reported, false);
});

// Review finding: a session whose model request failed ends with subtype "success" and
// is_error set, and its stage read "success" on the dashboard while the run failed there.
test('a session that failed on the model endpoint is no success, in the harness\'s outcome and in a row made without it', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'stats-research.json'), JSON.stringify(stats({ is_error: true, model_error: true, result: 'API Error: Unable to connect to API (ConnectionRefused)' })));
  writeFileSync(join(dir, 'stats-implement.json'), JSON.stringify(stats({ is_error: true, subtype: 'success' })));
  assert.equal(spentSoFar(dir).stages.research!.result, 'model endpoint failed');
  assert.equal(spentSoFar(dir).stages.implement!.result, 'error_during_execution');
  execFileSync(process.execPath, [join(repoRoot, 'harness/lib/outcome.mjs'), dir]);
  const harness = readOutcome(dir)!;
  assert.equal(harness.stages.research!.result, 'model endpoint failed');
  assert.equal(harness.stages.implement!.result, 'error_during_execution');
});

import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ColumnChart } from '../../control/dashboard/charts.tsx';
import { perDay } from '../../control/dashboard/outcome-stats.ts';
import { Intake } from '../../control/intake/index.ts';
import { claimNext, finishRun } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { OutcomeArchive, type OutcomeRow } from '../../control/outcomes/archive.ts';
import { recheckRegressions } from '../../control/outcomes/regression.ts';
import { parseSince, summarize } from '../../control/outcomes/summary.ts';
import { createRedactor } from '../../lib/redact.ts';
import { FakeClock, tempDir, testConfig } from '../support/helpers.ts';

function row(over: Partial<OutcomeRow>): OutcomeRow {
  return {
    run_id: 1, ticket_id: 1, fingerprint: 'f', trigger_source: 'grafana', service: 's',
    started: '2026-11-21T10:00:00.000Z', finished: '2026-11-21T10:10:00.000Z', trigger_to_push_s: 600,
    stages: { research: { tokens: 100, tool_calls: 2, cost_usd: 0.01, duration_s: 3 }, implement: { tokens: 300, tool_calls: 5, cost_usd: 0.03, duration_s: 9 } },
    outcome: 'clean', state: 'pushed', reason: 'pushed to staging', branch: 'b', commit: 'c', pushed_to: 'staging',
    diff: { files: 1, insertions: 1, deletions: 1 }, tests: { passed: 5, failed: 0 }, cost_usd: 0.04, model: null,
    attempt: 1, worker: 1, denials: [], regressions_detected_24h: null, revision: 1, ...over,
  };
}

test('summary: rates, median time to push, cost per ticket and per clean fix, tokens per stage', () => {
  const s = summarize([
    row({ run_id: 1, ticket_id: 1 }),
    row({ run_id: 2, ticket_id: 2, outcome: 'messy', trigger_to_push_s: 1200, cost_usd: 0.08 }),
    row({ run_id: 3, ticket_id: 3, outcome: 'failed', trigger_to_push_s: null, pushed_to: null, cost_usd: 0.02 }),
  ]);
  assert.equal(s.runs, 3);
  assert.deepEqual(s.rates, { clean: 0.333, messy: 0.333, failed: 0.333 });
  assert.equal(s.medianTriggerToPushS, 900);
  assert.equal(s.costPerTicketUsd, 0.0467);
  assert.equal(s.costPerCleanFixUsd, 0.14);
  assert.deepEqual(s.tokensPerStage, { research: 300, implement: 900 });
  assert.equal(parseSince('7d'), 7 * 86_400_000);
  assert.throws(() => parseSince('soon'), /duration like/);
  assert.throws(() => parseSince('0d'), /duration like/, 'an empty window is a mistake, not an empty report');
});

test('the archive keeps the latest revision; a torn last line is skipped', (t) => {
  const home = tempDir(t);
  const a = new OutcomeArchive(home);
  a.append(row({}));
  a.append(row({ revision: 2, regressions_detected_24h: false }));
  appendFileSync(join(home, 'outcomes.jsonl'), '{"run_id": 9, "tic');
  assert.equal(a.readAll().length, 2);
  assert.deepEqual(a.latest().map((r) => r.revision), [2]);
});

test('a row appended after a torn line stays whole; lines that are not rows are counted, not fatal', (t) => {
  const home = tempDir(t);
  const a = new OutcomeArchive(home);
  a.append(row({ run_id: 1 }));
  appendFileSync(join(home, 'outcomes.jsonl'), '{"run_id": 2, "ticket_id": 2, "fing');
  a.append(row({ run_id: 3, outcome: 'messy' }));
  appendFileSync(join(home, 'outcomes.jsonl'), 'null\n[1]\n"text"\n{"no_run_id": true}\n');
  a.append(row({ run_id: 4 }));
  const { rows, skipped } = a.read();
  assert.deepEqual(rows.map((r) => r.run_id), [1, 3, 4]);
  assert.equal(skipped, 5);
  assert.equal(summarize(a.latest()).messy, 1);
});

test('denials an older harness archived with the call input are read back reduced and redacted', (t) => {
  const home = tempDir(t);
  const old = { ...row({}), denials: [{ phase: 'implement', by: 'hook', tool: 'Write', reason: 'protected path', input: { file_path: '.env', content: 'STRIPE_SECRET_KEY=sk_live_51HqLyjWDarjtT1zdp7dcXYZabc\nDATABASE_URL=postgres://admin:hunter2@db/prod' } }] };
  appendFileSync(join(home, 'outcomes.jsonl'), JSON.stringify(old) + '\n');
  const [r] = new OutcomeArchive(home).readAll();
  assert.deepEqual(r!.denials, [{ phase: 'implement', by: 'hook', tool: 'Write', summary: '.env', reason: 'protected path' }]);
  assert.doesNotMatch(JSON.stringify(r), /hunter2|sk_live/);
});

test('ensure() creates an empty archive once and leaves an existing one alone', (t) => {
  const home = tempDir(t);
  const a = new OutcomeArchive(home);
  a.ensure();
  assert.deepEqual(a.read(), { rows: [], skipped: 0 });
  a.append(row({}));
  a.ensure();
  assert.equal(a.readAll().length, 1);
});

test('summary: a row without trigger_to_push_s or revision (DESIGN\'s fields only) is no NaN', () => {
  const bare = row({}) as Partial<OutcomeRow>;
  delete bare.trigger_to_push_s;
  delete bare.revision;
  const s = summarize([bare as OutcomeRow, row({ run_id: 2, trigger_to_push_s: 300 })]);
  assert.equal(s.medianTriggerToPushS, 300);
});

test('24 hours after a push the run is appended again with the regression flag', (t) => {
  const home = tempDir(t);
  const clock = new FakeClock(Date.parse('2026-11-21T10:00:00.000Z'));
  const config = testConfig(home, { intake: { settleSeconds: 0 } });
  const store = new Store(join(home, 'bugbot.db'), { now: clock.now });
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const archive = new OutcomeArchive(home);
  const ev = (id: string) => ({ source: 'manual' as const, kind: 'error' as const, title: 'x', message: 'Error: boom in checkout', labels: {}, count: 1, firstSeen: clock.now().toISOString(), lastSeen: clock.now().toISOString(), human: true, sourceEventId: id });
  const [a] = intake.accept([ev('a')]);
  const claim = claimNext(store, 1, null, 60)!;
  finishRun(store, claim.run.id, { ticketState: 'pushed', outcome: 'clean', reason: 'pushed' });
  archive.append(row({ run_id: claim.run.id, ticket_id: a!.ticketId!, finished: clock.now().toISOString() }));
  assert.deepEqual(recheckRegressions(store, archive), [], 'not a day old yet');
  clock.advance(3600);
  intake.accept([ev('b')]); // the same error again, after the grace period: a regression
  clock.advance(86_400);
  const [again] = recheckRegressions(store, archive);
  assert.equal(again!.revision, 2);
  assert.equal(again!.regressions_detected_24h, true);
  assert.equal(again!.outcome, 'messy');
  assert.deepEqual(recheckRegressions(store, archive), [], 'checked once');
  assert.equal(archive.latest()[0]!.revision, 2);
});

test('per day: a day without a push or a clean fix has no median and no cost per clean fix, and its chart draws no mark (not a zero)', () => {
  const days = perDay([
    row({ run_id: 1, ticket_id: 1, finished: '2026-11-20T10:00:00.000Z', trigger_to_push_s: 600, cost_usd: 0.04 }),
    row({ run_id: 2, ticket_id: 2, finished: '2026-11-21T10:00:00.000Z', outcome: 'failed', state: 'failed', trigger_to_push_s: null, cost_usd: 0.02 }),
  ]);
  assert.deepEqual(
    days.map((d) => [d.day, d.medianPushS, d.costPerTicket, d.costPerCleanFix]),
    [
      ['2026-11-20', 600, 0.04, 0.04],
      ['2026-11-21', null, 0.02, null],
    ],
  );
  const svg = String(
    ColumnChart({
      id: 'c',
      title: 'push',
      mode: 'grouped',
      columns: days.map((d) => ({ label: d.day, values: { push: d.medianPushS } })),
      series: [{ key: 'push', label: 'push', cls: 's-a' }],
    }),
  );
  assert.match(svg, /<rect[^>]*data-label="2026-11-20"[^>]*data-value="600"/);
  assert.doesNotMatch(svg, /<rect[^>]*data-label="2026-11-21"/);
});

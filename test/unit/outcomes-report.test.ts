// What `bugbot outcomes` and the dashboard's /outcomes page tell a person about the
// archive's rows the figures leave out or hold back: runs interrupted and requeued,
// costs known only in part, rows dated after now, fixes approved days after their run.
// The CLI runs as a user runs it; the page is requested without a socket.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { OutcomeRow } from '../../control/outcomes/archive.ts';
import { buildTestApp, repoRoot, tempDir } from '../support/helpers.ts';

const DAY = 86_400_000;

function row(over: Partial<OutcomeRow>): OutcomeRow {
  const finished = new Date(Date.now() - 3_600_000).toISOString();
  return {
    run_id: 1, ticket_id: 1, fingerprint: 'f', trigger_source: 'grafana', service: 's', started: finished, finished, trigger_to_push_s: 600,
    stages: { research: { tokens: 100, tool_calls: 2, cost_usd: 0.01, cost_reported: true, duration_s: 3 } },
    outcome: 'clean', state: 'pushed', reason: 'pushed to staging', branch: 'b', commit: 'c', pushed_to: 'staging',
    diff: null, tests: { passed: 5, failed: 0 }, cost_usd: 0.01, cost_reported: true, model: null,
    attempt: 1, worker: 1, denials: [], regressions_detected_24h: null, revision: 1, ...over,
  };
}

const interrupted = (run_id: number) =>
  row({ run_id, outcome: 'failed', state: 'queued', pushed_to: null, trigger_to_push_s: null, reason: 'stopped with the control plane mid-run; requeued (attempt 1 of 3)' });
const killed = (run_id: number) =>
  row({ run_id, ticket_id: run_id, outcome: 'failed', state: 'failed', cost_usd: 0, cost_reported: false, stages: { implement: { tokens: 900, tool_calls: 4, cost_usd: 0, cost_reported: false, duration_s: 300, result: 'idle' } } });

function bugbot(home: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/bugbot.js'), '--home', home, 'outcomes', ...args], {
    cwd: home,
    encoding: 'utf8',
    // The sources under test, not a bundle built from others.
    env: { ...process.env, BUGBOT_LOG_LEVEL: 'warn', BUGBOT_NO_BUNDLE: '1' },
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r;
}

function archive(t: Parameters<typeof tempDir>[0], rows: OutcomeRow[]): string {
  const home = join(tempDir(t), '.bugbot');
  mkdirSync(home);
  writeFileSync(join(home, 'outcomes.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return home;
}

test('bugbot outcomes: an interrupted run is out of the rates, a cost known in part is said, an approval counts on its day (review findings 2, 3, 8)', (t) => {
  const approvedToday = row({ run_id: 4, ticket_id: 4, finished: new Date(Date.now() - 8 * DAY).toISOString(), approved_at: new Date(Date.now() - 60_000).toISOString(), revision: 2 });
  const home = archive(t, [interrupted(1), row({ run_id: 2 }), killed(3), approvedToday]);
  const r = bugbot(home, ['--since', '7d']);
  assert.match(r.stdout, /4 run\(s\) on 3 ticket\(s\)/, 'the run finished 8 days ago and approved today is in');
  assert.match(r.stdout, /clean 2 \(67%\)\s+messy 0 \(0%\)\s+failed 1 \(33%\)\s+interrupted 1/);
  assert.match(r.stdout, /note: 1 run\(s\) interrupted and requeued .*not in the rates/);
  assert.match(r.stdout, /cost: at least \$0\.0300 total/);
  assert.match(r.stdout, /note: cost of 1 run\(s\) unknown in part: sessions stopped before reporting it/);
  const json = JSON.parse(bugbot(home, ['--json']).stdout) as { summary: { interrupted: number; costUnknownRuns: number; rates: { failed: number } }; notes: string[] };
  assert.equal(json.summary.interrupted, 1);
  assert.equal(json.summary.costUnknownRuns, 1);
  assert.equal(json.summary.rates.failed, 0.333);
  assert.ok(json.notes.some((n) => /cost of 1 run\(s\) unknown in part/.test(n)));
});

test('the /outcomes page leaves out a run dated after now and says so; it counts interrupted runs apart and says when costs are unknown (review findings 2, 3, 4)', async (t) => {
  const { app, config } = buildTestApp(t);
  const future = row({ run_id: 9, ticket_id: 9, finished: new Date(Date.now() + 400 * DAY).toISOString() });
  writeFileSync(join(config.home, 'outcomes.jsonl'), [interrupted(1), row({ run_id: 2 }), killed(3), future].map((r) => JSON.stringify(r)).join('\n') + '\n');
  const html = await (await app.request('/outcomes')).text();
  const day = row({}).finished.slice(0, 10);
  assert.match(html, /id="future-runs">Left out 1 run\(s\) dated after now/);
  // The charts end on the runs' day, not on the wrong clock's, and draw that day's runs.
  assert.match(html, new RegExp(`id="chart-outcomes"[\\s\\S]*?data-series="clean" data-label="${day}" data-value="1"`));
  assert.doesNotMatch(html, new RegExp(`data-label="${future.finished.slice(0, 10)}"`));
  assert.match(html, /data-runs="3"/);
  assert.match(html, /data-interrupted="1"/);
  assert.match(html, /clean<b>1 \(50%\)<\/b>/);
  assert.match(html, /cost of 1 run\(s\) unknown in part: sessions stopped before reporting it/);
});

test("the /outcomes page's runs table marks a run's cost known only in part as a lower bound, and only that run's", async (t) => {
  const { app, config } = buildTestApp(t);
  writeFileSync(join(config.home, 'outcomes.jsonl'), [row({ run_id: 2 }), killed(3)].map((r) => JSON.stringify(r)).join('\n') + '\n');
  const html = await (await app.request('/outcomes')).text();
  const cost = (run: number) => new RegExp(`<tr data-run="${run}">[\\s\\S]*?<td class="num"[^>]*>([^<]*)</td>\\s*</tr>`).exec(html)?.[1];
  assert.equal(cost(3), '≥ $0.00');
  assert.equal(cost(2), '$0.0100');
});

// harness/lib/run-phase.mjs, the watcher of one Claude Code session, run for real over a
// stand-in for the CLI: how a session that ran is told from one that ended early.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, tempDir } from '../support/helpers.ts';

const RUN_PHASE = join(repoRoot, 'harness/lib/run-phase.mjs');

interface Stats {
  killed: string | null;
  subtype: string | null;
  ended_at_result: boolean;
}

/** run-phase.mjs over `script` (a Node script standing in for the CLI), with `limits` (--idle, --wall...). */
function watch(t: Parameters<typeof tempDir>[0], script: string, limits: string[]): { status: number | null; stats: Stats; stderr: string } {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'wt'));
  writeFileSync(join(dir, 'session.mjs'), script);
  const r = spawnSync(
    process.execPath,
    [RUN_PHASE, '--phase', 'implement', '--log', join(dir, 'stage.jsonl'), '--stats', join(dir, 'stats.json'), '--worktree', join(dir, 'wt'), ...limits, '--', process.execPath, join(dir, 'session.mjs')],
    { encoding: 'utf8', timeout: 30_000 },
  );
  return { status: r.status, stats: JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8')) as Stats, stderr: r.stderr };
}

const RESULT_AFTER_300_MS = `setTimeout(() => console.log(JSON.stringify({ type: 'result', subtype: 'success', is_error: false, num_turns: 1, total_cost_usd: 0.01, result: 'ok' })), 300);\n`;

// Review finding: setTimeout fires at once for more than 2^31-1 ms (24.8 days), so a
// limit set that high to mean "no limit" (harness.phases.*.wallSeconds: 3000000) ended
// every session as it started: "wall clock: phase exceeded 3000000 s".
test('limits beyond what a timer holds (about 25 days) do not end the session at once', (t) => {
  for (const limits of [['--wall', '3000000'], ['--idle', '3000000'], ['--idle', '9999999999', '--wall', '9999999999']]) {
    const { status, stats, stderr } = watch(t, RESULT_AFTER_300_MS, limits);
    assert.equal(stats.killed, null, `${limits.join(' ')}: ${stderr}`);
    assert.equal(stats.subtype, 'success');
    assert.equal(status, 0, limits.join(' '));
  }
  // A limit that is reached still ends the session.
  const short = watch(t, RESULT_AFTER_300_MS.replace('300', '5000'), ['--wall', '1']);
  assert.equal(short.status, 1);
  assert.match(short.stats.killed ?? '', /^wall clock: phase exceeded 1 s/);
});

#!/usr/bin/env node
// Writes <ticket-dir>/outcome.json from what the run left behind: the per-phase
// stats (tokens, tool calls, cost, duration, denials), the result line, the push
// record and the test log. The control plane turns it into the archive row.
// Usage: node outcome.mjs <ticket-dir>
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAgentFile } from './agent-file.mjs';
import { denialRecord } from './denial.mjs';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: outcome.mjs <ticket-dir>\n');
  process.exit(2);
}
const read = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
const parse = (t) => {
  try {
    return t ? JSON.parse(t) : null;
  } catch {
    return null;
  }
};
const json = (f) => parse(read(f));
const kv = (text) => Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

const PHASES = ['research', 'implement', 'review', 'docs'];
const stages = {};
const denials = [];
let cost = 0;
let started = null;
let finished = null;
for (const phase of PHASES) {
  // A rework loop runs implement and review twice: their stats are summed.
  for (const f of [`stats-${phase}.json`, `stats-${phase}-rework.json`]) {
    const s = json(f);
    if (!s) continue;
    const st = (stages[phase] ??= { tokens: 0, tool_calls: 0, cost_usd: 0, cost_reported: true, duration_s: 0, turns: 0, result: null });
    st.tokens += s.tokens ?? 0;
    st.tool_calls += s.tool_calls ?? 0;
    st.cost_usd = Math.round((st.cost_usd + (s.cost_usd ?? 0)) * 1e6) / 1e6;
    // A session stopped before its result event reported no cost: the stage's is then a
    // lower bound (stats written before the flag existed say it by having no result).
    st.cost_reported &&= s.cost_reported ?? s.subtype != null;
    st.duration_s = Math.round((st.duration_s + (s.duration_s ?? 0)) * 10) / 10;
    st.turns += s.num_turns ?? 0;
    st.result = sessionResult(s);
    if (phase === 'review') st.edits = (st.edits ?? 0) + (s.edits ?? 0);
    cost += s.cost_usd ?? 0;
    // Tool, reason and a short summary only: never a denied call's input (a Write's contents).
    for (const d of s.denials ?? []) denials.push({ phase, ...denialRecord(d) });
    started = started && started < s.started ? started : s.started;
    finished = finished && finished > s.finished ? finished : s.finished;
  }
}

const push = kv(read('push.env'));
if (push.duration_s) stages.push = { duration_s: Number(push.duration_s), tokens: 0, tool_calls: 0, cost_usd: 0 };
const [state = 'failed', reason = 'the worker stopped without a result'] = read('result').trim().split('\t');

/**
 * Test counts from common runners' summaries: node:test and TAP (their summary), jest and
 * vitest (every "Tests:" line, summed: a workspace runs one per package), cargo (every
 * "test result:" line: unit tests, then doc tests), pytest and others (the last summary).
 */
function testCounts(log) {
  const num = (re, text) => Number(re.exec(text)?.[1] ?? 0);
  const last = (re, text) => {
    const all = [...text.matchAll(re)];
    return all.length ? Number(all[all.length - 1][1]) : null;
  };
  const tap = last(/^(?:# |ℹ )pass (\d+)/gm, log);
  if (tap !== null) return { passed: tap, failed: last(/^(?:# |ℹ )fail (\d+)/gm, log) ?? 0 };
  // Summed over lines: the tests' lines of jest/vitest (not their suites' or files'), cargo's results.
  const lines = [...log.matchAll(/^\s*Tests:?[ \t]+(.*)$/gm), ...log.matchAll(/^test result: \w+\. (.*)$/gm)].map((m) => m[1]);
  if (lines.length) {
    return { passed: lines.reduce((n, l) => n + num(/(\d+) passed/, l), 0), failed: lines.reduce((n, l) => n + num(/(\d+) failed/, l), 0) };
  }
  const passed = last(/(\d+) passed/g, log);
  const failed = last(/(\d+) failed/g, log) ?? (passed !== null ? 0 : null);
  return { passed, failed };
}
const tests = { ...testCounts(read('tests.log')), preexisting_failures: Number(push.tests_preexisting ?? 0) };
// The agent's folder: a link there (to the local key, another ticket's report) is not followed.
const verdict = parse(readAgentFile(join(dir, 'agent', 'verdict.json')));
const rework = existsSync(join(dir, 'stats-implement-rework.json'));
const reviewEdits = stages.review?.edits ?? 0;
const testsFirstTry = push.tests_first_try === 'true';

let outcome = 'failed';
if (state === 'pushed' || state === 'awaiting_approval') {
  outcome = reviewEdits <= 5 && testsFirstTry && !rework ? 'clean' : 'messy';
}
const why = [];
if (outcome === 'messy') {
  if (reviewEdits > 5) why.push(`review made ${reviewEdits} edits`);
  if (!testsFirstTry) why.push('the first test gate found new failures');
  if (rework) why.push('needed a rework loop');
}

const out = {
  state,
  outcome,
  reason: outcome === 'messy' ? `${reason}; ${why.join(', ')}` : reason,
  started,
  finished: push.finished ?? finished,
  stages,
  // The branch exists from the start; partial work of a failed run is kept on it.
  branch: push.branch ?? json('ticket.json')?.workspace?.branch ?? null,
  commit: push.commit ?? null,
  pushed_to: push.pushed_to ?? null,
  diff: push.files ? { files: Number(push.files), insertions: Number(push.insertions ?? 0), deletions: Number(push.deletions ?? 0) } : null,
  tests,
  cost_usd: Math.round(cost * 1e6) / 1e6,
  verdict: verdict ? { verdict: verdict.verdict, reasons: verdict.reasons ?? [], edits: verdict.edits ?? null } : null,
  rework,
  denials,
};
// Whole or not at all: the control plane may read it while a worker it lost track of writes it.
writeFileSync(join(dir, 'outcome.json.tmp'), JSON.stringify(out, null, 2));
renameSync(join(dir, 'outcome.json.tmp'), join(dir, 'outcome.json'));

/**
 * How a session ended, in a word: killed (why), else its result's subtype, except that a
 * failed model request ends with subtype "success" and is_error set: that is no success.
 * (control/dispatcher/outcome.ts reads stats files the same way.)
 */
function sessionResult(s) {
  if (s.killed) return s.killed;
  if (s.is_error && (!s.subtype || s.subtype === 'success')) return s.model_error || s.api_error_status ? 'model endpoint failed' : 'error_during_execution';
  return s.subtype ?? null;
}

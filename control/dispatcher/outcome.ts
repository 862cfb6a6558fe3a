/**
 * From a worker's `outcome.json` (written by harness/lib/outcome.mjs) to the
 * outcomes archive's row (docs/harness.md, "Outcomes"). A run that left no outcome (killed, crashed) still
 * gets a row: failed, with the reason.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { OutcomeArchive, OutcomeRow, StageStats } from '../outcomes/archive.ts';
import type { RunNotice, RunRow } from '../queue/leases.ts';
import type { Ticket, TicketState } from '../types.ts';
import { REPO_ROOT } from './phases.ts';

export interface WorkerOutcome {
  state: string;
  outcome: 'clean' | 'messy' | 'failed';
  reason: string;
  started: string | null;
  finished: string | null;
  stages: OutcomeRow['stages'];
  branch: string | null;
  commit: string | null;
  pushed_to: string | null;
  diff: OutcomeRow['diff'];
  tests: OutcomeRow['tests'];
  cost_usd: number;
  denials: OutcomeRow['denials'];
}

/** Where a worker's run stands once it got there, however the worker exits afterwards. */
export const LANDED_STATES = ['pushed', 'awaiting_approval', 'needs_human'] as const;

/**
 * How a cancelled run ends (the pool's, or one the reconciler stops at start). A cancel
 * that came after the push to staging is too late: the fix is there, the ticket pushed.
 * One that came after a push to the bot branch stands: nothing was merged, and the person
 * who cancelled said not to.
 */
export function cancelledRunEnd(outcome: Pick<WorkerOutcome, 'state' | 'reason'> | null, cancel: string, branch: string | null): { state: 'pushed' | 'failed'; reason: string; overCancel: boolean } {
  if (outcome?.state === 'pushed') return { state: 'pushed', reason: `${outcome.reason} (it had pushed before the cancel — ${cancel} — took effect)`, overCancel: true };
  const onBranch = outcome?.state === 'awaiting_approval' ? ` (its fix is on ${branch ?? 'its branch'}, awaiting approval when the cancel took effect: not merged)` : '';
  return { state: 'failed', reason: `${cancel}${onBranch}`, overCancel: false };
}

/**
 * The worker's outcome.json. A worker writes it on its way out (its trap); one killed
 * after it pushed (SIGKILL, a control plane killed with it) never does, yet its result
 * line already says where it got: then the outcome is written here from what the run
 * left (the same harness/lib/outcome.mjs), so a fix that landed is not taken for a
 * crash and made again.
 */
export function readOutcome(ticketDir: string): WorkerOutcome | null {
  const path = join(ticketDir, 'outcome.json');
  if (!existsSync(path) && landedResult(ticketDir)) {
    try {
      execFileSync(process.execPath, [join(REPO_ROOT, 'harness', 'lib', 'outcome.mjs'), ticketDir], { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // no outcome then: the run counts as one that died
    }
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as WorkerOutcome;
  } catch {
    return null;
  }
}

/** Whether the run's result line (harness_set_result) names a landed state. */
function landedResult(ticketDir: string): boolean {
  try {
    const state = readFileSync(join(ticketDir, 'result'), 'utf8').split('\t')[0];
    return (LANDED_STATES as readonly string[]).includes(state ?? '');
  } catch {
    return false;
  }
}

const PHASES = ['research', 'implement', 'review', 'docs'] as const;

/**
 * What a run that left no outcome.json (a worker killed, a control plane that died) had
 * spent, from what its phases wrote as they went: each finished session's stats file
 * (summed like harness/lib/outcome.mjs does) and, for the session under way, its last
 * progress snapshot (tokens and tool calls; Claude Code reports a session's cost only at
 * its end, so that part of the cost is not known, and its stage says so: `cost_reported`
 * false).
 */
export function spentSoFar(ticketDir: string): { stages: Record<string, StageStats>; cost_usd: number } {
  const stages: Record<string, StageStats> = {};
  let cost = 0;
  const add = (phase: string, s: StageStats) => {
    const st = (stages[phase] ??= { tokens: 0, tool_calls: 0, cost_usd: 0, cost_reported: true, duration_s: 0, turns: 0, result: null });
    st.tokens += s.tokens;
    st.tool_calls += s.tool_calls;
    st.cost_usd = Math.round((st.cost_usd + s.cost_usd) * 1e6) / 1e6;
    st.cost_reported = st.cost_reported !== false && s.cost_reported !== false;
    st.duration_s = Math.round((st.duration_s + s.duration_s) * 10) / 10;
    st.turns = (st.turns ?? 0) + (s.turns ?? 0);
    st.result = s.result ?? null;
    cost += s.cost_usd;
  };
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const read = (file: string): Record<string, unknown> | null => {
    try {
      const v = JSON.parse(readFileSync(join(ticketDir, file), 'utf8')) as unknown;
      return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  };
  for (const phase of PHASES) {
    for (const label of [phase, `${phase}-rework`]) {
      const s = read(`stats-${label}.json`);
      if (!s) continue;
      const result = sessionResult(s);
      // As harness/lib/outcome.mjs reads it: stats from before the flag say it by having no result.
      const reported = typeof s.cost_reported === 'boolean' ? s.cost_reported : s.subtype != null;
      add(phase, { tokens: num(s.tokens), tool_calls: num(s.tool_calls), cost_usd: num(s.cost_usd), cost_reported: reported, duration_s: num(s.duration_s), turns: num(s.num_turns), result });
    }
  }
  // The session under way, if one was: its last snapshot (a finished one's says done).
  const p = read('progress.json');
  if (p && p.done !== true && PHASES.includes(p.phase as (typeof PHASES)[number])) {
    add(p.phase as string, { tokens: num(p.tokens), tool_calls: num(p.tool_calls), cost_usd: num(p.cost_usd), cost_reported: false, duration_s: num(p.elapsed_s), result: 'stopped mid-session' });
  }
  return { stages, cost_usd: Math.round(cost * 1e6) / 1e6 };
}

export function buildOutcomeRow(a: {
  ticket: Ticket;
  run: RunRow;
  outcome: WorkerOutcome | null;
  state: TicketState;
  reason: string;
  model: string | null;
  /** The run's ticket folder: without an outcome, what it had spent is read from there. */
  ticketDir?: string;
}): OutcomeRow {
  const o = a.outcome;
  const spent = o ? { stages: o.stages as Record<string, StageStats>, cost_usd: o.cost_usd } : a.ticketDir ? spentSoFar(a.ticketDir) : { stages: {}, cost_usd: 0 };
  const finished = o?.finished ?? new Date().toISOString();
  const pushed = a.state === 'pushed' || a.state === 'awaiting_approval';
  const label = pushed && o ? o.outcome : 'failed';
  return {
    run_id: a.run.id,
    ticket_id: a.ticket.id,
    fingerprint: a.ticket.fingerprint,
    trigger_source: a.ticket.source,
    service: a.ticket.service,
    started: o?.started ?? a.run.started_at,
    finished,
    // Time to the push to staging: a fix waiting for approval gets its time with the approval's revision.
    trigger_to_push_s: a.state === 'pushed' ? Math.round((Date.parse(finished) - Date.parse(a.ticket.firstSeen)) / 1000) : null,
    stages: spent.stages,
    outcome: label,
    state: a.state,
    reason: a.reason,
    branch: o?.branch ?? a.run.branch,
    commit: o?.commit ?? null,
    pushed_to: o?.pushed_to ?? null,
    diff: o?.diff ?? null,
    tests: o?.tests ?? { passed: null, failed: null },
    cost_usd: spent.cost_usd,
    // A stage stopped before Claude Code reported its cost makes the run's a lower bound.
    cost_reported: !Object.values(spent.stages).some((st) => st?.cost_reported === false),
    model: a.model,
    attempt: a.run.attempt,
    worker: a.run.worker_id,
    denials: o?.denials ?? [],
    regressions_detected_24h: null,
    revision: 1,
  };
}

/**
 * Append a run's row; a failure to write it is logged, never thrown (the run still
 * finishes): the archive keeps the row and writes it once it can (the dispatcher retries).
 */
export function archiveRow(archive: OutcomeArchive | undefined, row: OutcomeRow, logger: Logger): void {
  try {
    archive?.append(row);
  } catch (err) {
    const { pending, dropped } = archive!.unwritten();
    logger.error('could not append the outcome row; kept, to be written once the archive can take it', { run: row.run_id, error: (err as Error).message, pending, dropped });
  }
}

/** What a run's end tells its reporters, kept with the run until they have been told (finishRun). */
export function runNotice(row: OutcomeRow): RunNotice {
  return { run_id: row.run_id, state: row.state, reason: row.reason, commit: row.commit, branch: row.branch, pushed_to: row.pushed_to };
}

/** What became of a ticket whose run was cut short: another attempt, or none left. */
export function attemptsNote(attempt: number, maxAttempts: number, again: boolean): string {
  return again ? `requeued (attempt ${attempt} of ${maxAttempts})` : `attempt ${attempt} of ${maxAttempts}, giving up`;
}

/**
 * How a session ended, in a word, from its stats file: as harness/lib/outcome.mjs reads
 * it (a failed model request ends with subtype "success" and is_error set: no success).
 */
function sessionResult(s: Record<string, unknown>): string | null {
  if (typeof s.killed === 'string' && s.killed) return s.killed;
  if (s.is_error === true && (!s.subtype || s.subtype === 'success')) return s.model_error || s.api_error_status ? 'model endpoint failed' : 'error_during_execution';
  return typeof s.subtype === 'string' ? s.subtype : null;
}

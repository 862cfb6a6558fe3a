/**
 * From a worker's `outcome.json` (written by harness/lib/outcome.mjs) to the
 * archive row of DESIGN §6. A run that left no outcome (killed, crashed) still
 * gets a row: failed, with the reason.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { OutcomeArchive, OutcomeRow, StageStats } from '../outcomes/archive.ts';
import type { RunRow } from '../queue/leases.ts';
import type { Ticket, TicketState } from '../types.ts';

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

export function readOutcome(ticketDir: string): WorkerOutcome | null {
  try {
    return JSON.parse(readFileSync(join(ticketDir, 'outcome.json'), 'utf8')) as WorkerOutcome;
  } catch {
    return null;
  }
}

export function buildOutcomeRow(a: {
  ticket: Ticket;
  run: RunRow;
  outcome: WorkerOutcome | null;
  state: TicketState;
  reason: string;
  model: string | null;
}): OutcomeRow {
  const o = a.outcome;
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
    trigger_to_push_s: pushed ? Math.round((Date.parse(finished) - Date.parse(a.ticket.firstSeen)) / 1000) : null,
    stages: (o?.stages ?? {}) as Record<string, StageStats>,
    outcome: label,
    state: a.state,
    reason: a.reason,
    branch: o?.branch ?? a.run.branch,
    commit: o?.commit ?? null,
    pushed_to: o?.pushed_to ?? null,
    diff: o?.diff ?? null,
    tests: o?.tests ?? { passed: null, failed: null },
    cost_usd: o?.cost_usd ?? 0,
    model: a.model,
    attempt: a.run.attempt,
    worker: a.run.worker_id,
    denials: o?.denials ?? [],
    regressions_detected_24h: null,
    revision: 1,
  };
}

/** Append a run's row; a failure to write it is logged, never thrown (the run still finishes). */
export function archiveRow(archive: OutcomeArchive | undefined, row: OutcomeRow, logger: Logger): void {
  try {
    archive?.append(row);
  } catch (err) {
    logger.error('could not append the outcome row', { run: row.run_id, error: (err as Error).message });
  }
}

/** What became of a ticket whose run was cut short: another attempt, or none left. */
export function attemptsNote(attempt: number, maxAttempts: number, again: boolean): string {
  return again ? `requeued (attempt ${attempt} of ${maxAttempts})` : `attempt ${attempt} of ${maxAttempts}, giving up`;
}

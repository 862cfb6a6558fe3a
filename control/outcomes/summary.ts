/**
 * Summary statistics over outcome rows: rates of clean / messy / failed, median
 * time from trigger to push, cost per ticket and per clean fix, tokens per stage.
 */
import type { OutcomeRow } from './archive.ts';

export interface OutcomeSummary {
  runs: number;
  tickets: number;
  clean: number;
  messy: number;
  failed: number;
  /**
   * Runs cut short and requeued (a control-plane restart, a worker lost): labelled
   * `failed` in the archive, but nothing was decided about the fix; left out of the rates.
   */
  interrupted: number;
  /** Of clean, messy and failed: the runs that ran to an end. */
  rates: { clean: number; messy: number; failed: number };
  medianTriggerToPushS: number | null;
  /** What the runs are known to have cost: a lower bound when `costUnknownRuns` is not 0. */
  costUsd: number;
  costPerTicketUsd: number | null;
  costPerCleanFixUsd: number | null;
  /** Runs with a session stopped before Claude Code reported its cost. */
  costUnknownRuns: number;
  tokensPerStage: Record<string, number>;
  denials: number;
}

export function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round = (n: number, d = 4) => Math.round(n * 10 ** d) / 10 ** d;

/**
 * A run cut short and requeued: the dispatcher archives it with the ticket's state at the
 * time, `queued` (another attempt follows), labelled failed (buildOutcomeRow).
 */
export const isInterrupted = (r: OutcomeRow): boolean => r.state === 'queued';

/** Whether part of the run's cost is unknown: a session, or its stage, stopped before reporting it. */
export const costUnknown = (r: OutcomeRow): boolean => r.cost_reported === false || Object.values(r.stages ?? {}).some((st) => st?.cost_reported === false);

/** When the run's fix went out: an approved one when it was approved, else when the run finished. */
export const pushedAt = (r: OutcomeRow): string => r.approved_at ?? r.finished;

export function summarize(rows: OutcomeRow[]): OutcomeSummary {
  const ended = rows.filter((r) => !isInterrupted(r));
  const count = (l: OutcomeRow['outcome']) => ended.filter((r) => r.outcome === l).length;
  const clean = count('clean');
  const messy = count('messy');
  const failed = count('failed');
  const runs = rows.length;
  const tickets = new Set(rows.map((r) => r.ticket_id)).size;
  // Interrupted runs' cost and tokens count: they were spent all the same.
  const cost = rows.reduce((a, r) => a + (r.cost_usd ?? 0), 0);
  const tokensPerStage: Record<string, number> = {};
  for (const r of rows) {
    for (const [stage, st] of Object.entries(r.stages ?? {})) tokensPerStage[stage] = (tokensPerStage[stage] ?? 0) + (st?.tokens ?? 0);
  }
  const rate = (n: number) => (ended.length ? round(n / ended.length, 3) : 0);
  return {
    runs,
    tickets,
    clean,
    messy,
    failed,
    interrupted: runs - ended.length,
    rates: { clean: rate(clean), messy: rate(messy), failed: rate(failed) },
    medianTriggerToPushS: median(rows.flatMap((r) => (typeof r.trigger_to_push_s === 'number' ? [r.trigger_to_push_s] : []))),
    costUsd: round(cost),
    costPerTicketUsd: tickets ? round(cost / tickets) : null,
    costPerCleanFixUsd: clean ? round(cost / clean) : null,
    costUnknownRuns: rows.filter(costUnknown).length,
    tokensPerStage,
    denials: rows.reduce((a, r) => a + (r.denials?.length ?? 0), 0),
  };
}

/** What a summary's numbers leave out or hold back, in words; empty when nothing. */
export function summaryNotes(s: OutcomeSummary): string[] {
  const notes: string[] = [];
  if (s.interrupted) notes.push(`${s.interrupted} run(s) interrupted and requeued (a control-plane restart, a lost worker): not in the rates`);
  if (s.costUnknownRuns) notes.push(`cost of ${s.costUnknownRuns} run(s) unknown in part: sessions stopped before reporting it (the cost shown is a lower bound)`);
  return notes;
}

/**
 * The runs whose fix went out (or, unpushed, that finished) from `from` to `now`, and
 * how many are dated after now (a clock set wrong when they were written): those are in
 * no window up to now.
 */
export function inWindow(rows: OutcomeRow[], from: number, now: number): { rows: OutcomeRow[]; future: number } {
  const at = (r: OutcomeRow) => Date.parse(pushedAt(r));
  return { rows: rows.filter((r) => at(r) >= from && at(r) <= now), future: rows.filter((r) => at(r) > now).length };
}

/** What `bugbot outcomes --json` prints. */
export interface OutcomesReport {
  since: string;
  summary: OutcomeSummary;
  notes: string[];
  rows: OutcomeRow[];
}

/**
 * The report's JSON as `JSON.stringify(report, null, 2)` writes it, in pieces of at most
 * `rowsPerPiece` rows: a long window of a large archive is more text than the longest
 * string V8 makes (512 MiB), and one JSON.stringify of it throws instead of printing.
 */
export function* reportJson(report: OutcomesReport, rowsPerPiece = 500): Generator<string> {
  const { rows, ...head } = report;
  // `{ ...head }` without its closing "\n}": the rows go on from there.
  const open = JSON.stringify(head, null, 2).slice(0, -2);
  if (!rows.length) {
    yield `${open},\n  "rows": []\n}`;
    return;
  }
  let piece = `${open},\n  "rows": [`;
  for (let i = 0; i < rows.length; i++) {
    piece += `${i ? ',' : ''}\n    ${JSON.stringify(rows[i], null, 2).replace(/\n/g, '\n    ')}`;
    if ((i + 1) % rowsPerPiece === 0) {
      yield piece;
      piece = '';
    }
  }
  yield `${piece}\n  ]\n}`;
}

/** "7d", "24h", "90m" → milliseconds. */
export function parseSince(s: string): number {
  const m = /^([1-9]\d*)\s*(m|h|d|w)$/.exec(s.trim());
  if (!m) throw new Error(`--since takes a duration like 90m, 24h, 7d or 2w, not "${s}"`);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}

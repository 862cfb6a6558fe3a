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
  rates: { clean: number; messy: number; failed: number };
  medianTriggerToPushS: number | null;
  costUsd: number;
  costPerTicketUsd: number | null;
  costPerCleanFixUsd: number | null;
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

export function summarize(rows: OutcomeRow[]): OutcomeSummary {
  const count = (l: OutcomeRow['outcome']) => rows.filter((r) => r.outcome === l).length;
  const clean = count('clean');
  const messy = count('messy');
  const failed = count('failed');
  const runs = rows.length;
  const tickets = new Set(rows.map((r) => r.ticket_id)).size;
  const cost = rows.reduce((a, r) => a + (r.cost_usd ?? 0), 0);
  const tokensPerStage: Record<string, number> = {};
  for (const r of rows) {
    for (const [stage, st] of Object.entries(r.stages ?? {})) tokensPerStage[stage] = (tokensPerStage[stage] ?? 0) + (st?.tokens ?? 0);
  }
  const rate = (n: number) => (runs ? round(n / runs, 3) : 0);
  return {
    runs,
    tickets,
    clean,
    messy,
    failed,
    rates: { clean: rate(clean), messy: rate(messy), failed: rate(failed) },
    medianTriggerToPushS: median(rows.flatMap((r) => (typeof r.trigger_to_push_s === 'number' ? [r.trigger_to_push_s] : []))),
    costUsd: round(cost),
    costPerTicketUsd: tickets ? round(cost / tickets) : null,
    costPerCleanFixUsd: clean ? round(cost / clean) : null,
    tokensPerStage,
    denials: rows.reduce((a, r) => a + (r.denials?.length ?? 0), 0),
  };
}

/** "7d", "24h", "90m" → milliseconds. */
export function parseSince(s: string): number {
  const m = /^([1-9]\d*)\s*(m|h|d|w)$/.exec(s.trim());
  if (!m) throw new Error(`--since takes a duration like 90m, 24h, 7d or 2w, not "${s}"`);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}

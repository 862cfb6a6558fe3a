/**
 * The outcomes page's numbers: the filter from the query string (source, service,
 * date range over the day a run's fix went out, else the day it finished, UTC) and the
 * per-day series the charts draw. Pure functions over archive rows.
 */
import type { OutcomeRow } from '../outcomes/archive.ts';
import { isInterrupted, median, pushedAt } from '../outcomes/summary.ts';

export interface OutcomeFilter {
  source?: string | undefined;
  service?: string | undefined;
  /** YYYY-MM-DD, inclusive. */
  from?: string | undefined;
  to?: string | undefined;
}

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

/** The filter a query string asks for; unusable values are reported, not guessed at. */
export function parseFilter(q: Record<string, string | undefined>): { filter: OutcomeFilter; problems: string[] } {
  const problems: string[] = [];
  const filter: OutcomeFilter = {};
  const text = (v: string | undefined) => (v && v.trim() ? v.trim().slice(0, 200) : undefined);
  filter.source = text(q.source);
  filter.service = text(q.service);
  for (const k of ['from', 'to'] as const) {
    const v = text(q[k]);
    if (!v) continue;
    if (DAY_RE.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`))) filter[k] = v;
    else problems.push(`${k} must be a date like 2026-11-21, not "${v}"`);
  }
  if (filter.from && filter.to && filter.from > filter.to) problems.push('from is after to');
  return { filter, problems };
}

export function filterQuery(f: OutcomeFilter): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/**
 * A run's day (UTC): an approved fix's is the day it was approved (it went out then), as
 * `bugbot outcomes --since` counts it. A time with an offset (a row another tool or a
 * person wrote: `23:30:00-05:00`) is the next day in UTC, not the day its text starts with.
 */
export const dayOf = (row: OutcomeRow): string => {
  const at = pushedAt(row) || row.started || '';
  const ms = at[10] === 'T' && /[+-]\d\d:?\d\d$/.test(at) ? Date.parse(at) : Number.NaN;
  return Number.isFinite(ms) ? new Date(ms).toISOString().slice(0, 10) : at.slice(0, 10);
};

/**
 * The rows dated up to `now`, and how many are after it: a row from a clock set wrong
 * would stretch the charts' days to its own, and the last `maxDays` of them would hold
 * nothing but it (`bugbot outcomes` leaves them out too).
 */
export function withoutFuture(rows: OutcomeRow[], now: number): { rows: OutcomeRow[]; future: number } {
  const after = (r: OutcomeRow) => Date.parse(pushedAt(r) || r.started) > now;
  const kept = rows.filter((r) => !after(r));
  return { rows: kept, future: rows.length - kept.length };
}

export function matches(row: OutcomeRow, f: OutcomeFilter): boolean {
  if (f.source && row.trigger_source !== f.source) return false;
  if (f.service && (row.service ?? '') !== f.service) return false;
  const day = dayOf(row);
  if (f.from && day < f.from) return false;
  if (f.to && day > f.to) return false;
  return true;
}

export interface DayStats {
  day: string;
  clean: number;
  messy: number;
  /** Runs that ended failed: not those interrupted and requeued (summarize's `interrupted`). */
  failed: number;
  /** Median seconds from the first occurrence to the push, of runs that pushed. */
  /** null on a day without a push (or a ticket, or a clean fix): nothing to draw, not a zero. */
  medianPushS: number | null;
  costPerTicket: number | null;
  costPerCleanFix: number | null;
}

/** Every day from the first to the last row (empty days included, at most `maxDays` of the latest). */
export function perDay(rows: OutcomeRow[], maxDays = 120): DayStats[] {
  const by = new Map<string, OutcomeRow[]>();
  for (const r of rows) {
    const d = dayOf(r);
    if (!DAY_RE.test(d)) continue;
    (by.get(d) ?? by.set(d, []).get(d)!).push(r);
  }
  if (!by.size) return [];
  const days = [...by.keys()].sort();
  const out: DayStats[] = [];
  const last = Date.parse(`${days[days.length - 1]}T00:00:00Z`);
  let t = Math.max(Date.parse(`${days[0]}T00:00:00Z`), last - (maxDays - 1) * 86_400_000);
  for (; t <= last; t += 86_400_000) {
    const day = new Date(t).toISOString().slice(0, 10);
    const rs = by.get(day) ?? [];
    const cost = rs.reduce((a, r) => a + (r.cost_usd ?? 0), 0);
    const tickets = new Set(rs.map((r) => r.ticket_id)).size;
    const clean = rs.filter((r) => r.outcome === 'clean').length;
    out.push({
      day,
      clean,
      messy: rs.filter((r) => r.outcome === 'messy').length,
      failed: rs.filter((r) => r.outcome === 'failed' && !isInterrupted(r)).length,
      medianPushS: median(rs.flatMap((r) => (typeof r.trigger_to_push_s === 'number' ? [r.trigger_to_push_s] : []))) ?? null,
      costPerTicket: tickets ? cost / tickets : null,
      costPerCleanFix: clean ? cost / clean : null,
    });
  }
  return out;
}

export interface FingerprintStats {
  fingerprint: string;
  runs: number;
  tickets: number[];
  lastOutcome: string;
  service: string | null;
}

/** Fingerprints by how many runs they took, most first. */
export function topFingerprints(rows: OutcomeRow[], n = 10): FingerprintStats[] {
  const by = new Map<string, FingerprintStats>();
  for (const r of rows) {
    const s = by.get(r.fingerprint) ?? { fingerprint: r.fingerprint, runs: 0, tickets: [], lastOutcome: r.outcome, service: r.service };
    s.runs++;
    if (!s.tickets.includes(r.ticket_id)) s.tickets.push(r.ticket_id);
    s.lastOutcome = r.outcome;
    by.set(r.fingerprint, s);
  }
  return [...by.values()].sort((a, b) => b.runs - a.runs || a.fingerprint.localeCompare(b.fingerprint)).slice(0, n);
}

export function distinct(rows: OutcomeRow[], key: (r: OutcomeRow) => string | null | undefined): string[] {
  return [...new Set(rows.map(key).filter((v): v is string => Boolean(v)))].sort();
}

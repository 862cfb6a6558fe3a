/**
 * Time ranges as tools and callers give them: a duration back from now (or from an
 * anchor such as the error's time), or explicit ISO-8601 bounds. Every range is
 * bounded by `maxRangeHours` so no query scans an unbounded span.
 */
import { LokiError, type TimeRange } from './types.ts';

export type TimeRangeInput = string | { start: string; end: string };

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+[smhd])+$/;

/** Milliseconds in a duration like "15m", "2h", "1h30m", "7d"; undefined when malformed. */
export function parseDuration(s: string): number | undefined {
  const t = s.trim();
  if (!DURATION.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(/(\d+)([smhd])/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

export function formatDuration(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 1 ? `${Number(h.toFixed(2))}h` : `${Math.round(ms / 60_000)}m`;
}

const HINT = 'use a duration like "15m", "2h" or "24h" (ending now), or {"start": ISO-8601, "end": ISO-8601}';

/** Resolve and bound a range; relative ranges end at `anchor` (default `now`). */
export function resolveTimeRange(
  input: TimeRangeInput,
  opts: { now: Date; maxRangeHours: number; anchor?: Date },
): TimeRange {
  let range: TimeRange;
  if (typeof input === 'string') {
    const ms = parseDuration(input);
    if (ms === undefined) throw new LokiError(`time_range ${JSON.stringify(input)} is not understood: ${HINT}`);
    const end = opts.anchor ?? opts.now;
    range = { start: new Date(end.getTime() - ms), end };
  } else {
    const start = new Date(input.start);
    const end = new Date(input.end);
    const bad = [
      Number.isNaN(start.getTime()) ? `start ${JSON.stringify(input.start)}` : '',
      Number.isNaN(end.getTime()) ? `end ${JSON.stringify(input.end)}` : '',
    ].filter(Boolean);
    if (bad.length) throw new LokiError(`time_range ${bad.join(' and ')} is not an ISO-8601 time: ${HINT}`);
    range = { start, end };
  }
  return boundRange(range, opts.maxRangeHours);
}

function boundRange(range: TimeRange, maxRangeHours: number): TimeRange {
  const span = range.end.getTime() - range.start.getTime();
  // A duration so long its start is no date at all.
  if (!Number.isFinite(span)) throw new LokiError(`time_range is longer than the ${formatDuration(maxRangeHours * 3_600_000)} allowed: ${HINT}`);
  if (span <= 0) {
    throw new LokiError(`time_range start (${range.start.toISOString()}) must be before its end (${range.end.toISOString()})`);
  }
  if (span > maxRangeHours * 3_600_000) {
    throw new LokiError(
      `time_range spans ${formatDuration(span)}; at most ${formatDuration(maxRangeHours * 3_600_000)} is allowed ` +
        `(mcp.loki.maxRangeHours): narrow it`,
    );
  }
  return range;
}

/** Nanoseconds since the epoch, as Loki's start/end parameters take them. */
export function toNs(d: Date): bigint {
  return BigInt(d.getTime()) * 1_000_000n;
}

export function nsToIso(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

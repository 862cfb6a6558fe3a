/**
 * Query results as text for a model or a ticket: capped in lines and bytes, oldest
 * first, and always saying when something was left out and how to see it, so a
 * reader never mistakes a truncated answer for the whole story.
 */
import { nsToIso } from './time-range.ts';
import type { BackendResult, Direction, LogEntry } from './types.ts';

export interface FormatOptions {
  /** Lines printed before the log lines (what was queried). */
  header: string[];
  maxLines: number;
  maxBytes: number;
  /** Which end survives a cap: backward keeps the newest lines. */
  direction: Direction;
  /** Print stream labels (HTTP); file lines carry their fields in the line itself. */
  showLabels: boolean;
  /** Said when Loki's limit was hit: how to get more. */
  limitHint: string;
}

// Room kept for the notices that follow the lines.
const NOTICE_RESERVE = 400;

export function formatResult(r: BackendResult, o: FormatOptions): string {
  const head = [...o.header];
  if (r.stats) {
    head.push(`Loki processed ${plural(r.stats.linesProcessed, 'line')} (${plural(r.stats.bytesProcessed, 'byte')}) in ${r.stats.execSeconds.toFixed(3)} s.`);
  }
  const common = o.showLabels ? commonLabels(r.entries) : {};
  if (o.showLabels && Object.keys(common).length) head.push(`Labels of every line: ${labelText(common)}`);

  const rows = r.series ? r.series.map((s) => `${labelText(s.labels)} ${s.values.map(([t, v]) => `${new Date(t * 1000).toISOString()}=${v}`).join(' ')}`) : r.entries.map((e) => row(e, common, o.showLabels));
  const total = rows.length;
  const byLines = total > o.maxLines;
  const budget = Math.max(0, o.maxBytes - NOTICE_RESERVE - Buffer.byteLength(head.join('\n')));
  const { rows: picked, cut: byBytes } = fitBytes(pick(rows, o.maxLines, o.direction), budget, o.direction);

  const tail: string[] = [...r.notes.map((n) => `[note: ${n}]`)];
  if (total === 0) tail.push('[no lines matched]');
  if (r.limitReached) tail.push(`[limit reached: more lines may match than were returned. ${o.limitHint}]`);
  if (byLines || byBytes) {
    const which = o.direction === 'backward' ? 'newest' : 'oldest';
    const cap = byBytes ? `output is capped at ${o.maxBytes} bytes` : `output is capped at ${o.maxLines} lines`;
    tail.push(`[truncated: the ${which} ${picked.length} of ${plural(total, 'line')} shown; ${cap}. Narrow time_range or add labels/contains to see the rest.]`);
  }
  return [...head, ...picked, ...tail].join('\n');
}

function row(e: LogEntry, common: Record<string, string>, showLabels: boolean): string {
  const own = showLabels ? Object.fromEntries(Object.entries(e.labels).filter(([k]) => !(k in common))) : {};
  return `${nsToIso(e.ts)} ${Object.keys(own).length ? `${labelText(own)} ` : ''}${e.line}`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function labelText(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ')}}`;
}

// Labels with the same value on every entry, printed once instead of on each line.
function commonLabels(entries: LogEntry[]): Record<string, string> {
  const first = entries[0];
  if (!first) return {};
  return Object.fromEntries(Object.entries(first.labels).filter(([k, v]) => entries.every((e) => e.labels[k] === v)));
}

function pick(rows: string[], n: number, direction: Direction): string[] {
  if (rows.length <= n) return rows;
  return direction === 'backward' ? rows.slice(rows.length - n) : rows.slice(0, n);
}

// The rows that fit in `budget` bytes from the end the direction favours; a too-long first row is cut.
function fitBytes(rows: string[], budget: number, direction: Direction): { rows: string[]; cut: boolean } {
  const order = direction === 'backward' ? [...rows].reverse() : rows;
  const out: string[] = [];
  let used = 0;
  let cut = false;
  for (const r of order) {
    const size = Buffer.byteLength(r) + 1;
    if (used + size > budget) {
      if (out.length === 0 && budget > 64) out.push(cutUtf8(r, budget - 32) + ' …[line cut]');
      cut = true;
      break;
    }
    out.push(r);
    used += size;
  }
  return { rows: direction === 'backward' ? out.reverse() : out, cut };
}

function cutUtf8(s: string, bytes: number): string {
  const buf = Buffer.from(s).subarray(0, bytes);
  // Drop a partial multi-byte character at the cut (decoding would show U+FFFD).
  return buf.toString('utf8').replace(/\uFFFD$/, '');
}

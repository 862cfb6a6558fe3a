/**
 * Fields of a log line, read the way Loki's parsers read them: JSON objects flatten
 * nested keys with `_` (`{"user":{"id":1}}` gives `user_id`), logfmt gives its
 * `key=value` pairs. The file backend matches labels against these fields and the
 * client finds a user's id in them.
 */
import type { LogEntry } from './types.ts';

const TIME_FIELDS = ['time', 'timestamp', 'ts', '@timestamp', 'date'];

/** Top-level and nested scalar fields of a JSON object, nested keys joined with `_`. */
export function flattenJson(obj: Record<string, unknown>, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  for (const [k, v] of Object.entries(obj)) {
    const key = (prefix ? `${prefix}_${k}` : k).replace(/[^A-Za-z0-9_]/g, '_');
    if (v === null || v === undefined) continue;
    if (typeof v === 'object' && !Array.isArray(v)) flattenJson(v as Record<string, unknown>, key, out);
    else if (typeof v !== 'object') out[key] = String(v);
  }
  return out;
}

export function parseJsonObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function parseLogfmt(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const raw = m[2]!;
    out[m[1]!] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
  }
  return out;
}

/**
 * The value of `label` for an entry: a stream label wins (Loki renames a parsed field
 * that collides with one to `<label>_extracted`), then the parsed line.
 */
export function fieldValue(e: LogEntry, label: string, parser: 'json' | 'logfmt'): string | undefined {
  const fromLabels = e.labels[label] ?? e.labels[`${label}_extracted`];
  if (fromLabels !== undefined) return fromLabels;
  if (parser === 'json') {
    const obj = parseJsonObject(e.line);
    return obj ? flattenJson(obj)[label] : undefined;
  }
  return parseLogfmt(e.line)[label];
}

/** Marks that redaction masked something (`[REDACTED]`, `[REDACTED:jwt]`, a configured literal's `[secret]`). */
const MASK = /\[REDACTED[\]:]|\[secret\]/g;
const masks = (s: string) => s.match(MASK)?.length ?? 0;

/**
 * A label or field value as redaction shows it: redacted with its name in front so
 * key-aware rules apply (`user_id` = "42" becomes a user hash, `password` = "x" is masked).
 * Once anything in it is masked the whole value is: `password=correct horse` is masked
 * only up to the space as text, and a label shown (or matched: the file backend's
 * `password=~"\\[REDACTED\\] h.*"`) as `[REDACTED] horse` would give the rest away.
 */
export function redactedValue(name: string, value: string, redact: (s: string) => string): string {
  const r = redact(`${name}=${value}`);
  if (!r.startsWith(`${name}=`)) return '[REDACTED]';
  const shown = r.slice(name.length + 1);
  return masks(shown) > masks(value) ? '[REDACTED]' : shown;
}

/**
 * A line's time in nanoseconds: ISO strings, or epoch numbers in seconds,
 * milliseconds (pino, bunyan), microseconds or nanoseconds, told apart by magnitude.
 */
export function lineTime(fields: Record<string, unknown>): bigint | undefined {
  for (const f of TIME_FIELDS) {
    const v = fields[f];
    if (typeof v === 'string') {
      if (/^\d+$/.test(v)) return epochNs(Number(v), v);
      const ms = Date.parse(v);
      if (!Number.isNaN(ms)) return BigInt(ms) * 1_000_000n;
    } else if (typeof v === 'number' && Number.isFinite(v)) {
      return epochNs(v, String(Math.trunc(v)));
    }
  }
  return undefined;
}

function epochNs(n: number, digits: string): bigint {
  if (n >= 1e17) return BigInt(digits);
  if (n >= 1e14) return BigInt(Math.round(n)) * 1000n;
  if (n >= 1e11) return BigInt(Math.round(n)) * 1_000_000n;
  return BigInt(Math.round(n * 1000)) * 1_000_000n;
}

/**
 * Bounds on what a caller may ask for. Raw LogQL is the escape hatch for queries the
 * matcher form cannot express, so it must name its range and limit explicitly: a
 * forgotten limit must never turn into Loki's default scan of the whole retention. It
 * may not look inside lines either (raw-logql.ts): Loki would do so before redaction.
 */
import { RAW_LOGQL_ALLOWED, rangeMs, refusedConstructs } from './raw-logql.ts';
import { formatDuration } from './time-range.ts';
import { LokiError } from './types.ts';

export interface RawQueryRequest {
  logql: string;
  hasTimeRange: boolean;
  limit?: number;
  /** Matcher-form arguments given alongside (they would be ignored, so they are refused). */
  alsoGiven: string[];
}

/** Throws a LokiError listing every problem of a raw LogQL request at once. */
export function checkRawLogQL(req: RawQueryRequest, bounds: { maxLines: number; maxRangeHours: number }): void {
  const problems: string[] = [];
  const range = formatDuration(bounds.maxRangeHours * 3_600_000);
  if (!req.hasTimeRange) problems.push(`raw LogQL needs an explicit time_range (a duration such as "1h", at most ${range}, or {start, end})`);
  if (req.limit === undefined) problems.push(`raw LogQL needs an explicit limit (1 to ${bounds.maxLines})`);
  if (!/\{[^}]*\}/.test(req.logql)) problems.push('raw LogQL must contain a stream selector such as {service_name="api"}');
  const refused = refusedLogQL(req.logql);
  if (refused) problems.push(refused);
  // A range vector looks back from each step by its own length: time_range alone does not bound it.
  const tooLong = refusedConstructs(req.logql).ranges.filter((r) => !(rangeMs(r) <= bounds.maxRangeHours * 3_600_000));
  if (tooLong.length) problems.push(`the range${tooLong.length > 1 ? 's' : ''} ${listed(tooLong.map((r) => `\`${r.replace(/\s+/g, '')}\``))} look${tooLong.length > 1 ? '' : 's'} back further than ${range} (mcp.loki.maxRangeHours)`);
  if (req.alsoGiven.length) problems.push(`give either logql or ${req.alsoGiven.join('/')}, not both`);
  if (problems.length) throw new LokiError(problems.join('; '));
}

/** Throws unless 1 <= limit <= maxLines. */
export function checkLimit(limit: number, maxLines: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLines) {
    throw new LokiError(`limit ${limit} is not allowed: use 1 to ${maxLines} lines (mcp.loki.maxLines)`);
  }
}

function refusedLogQL(logql: string): string | undefined {
  const { stages, filters, other } = refusedConstructs(logql);
  const named = [
    ...tick(stages),
    ...(filters.length ? [`the line filter${filters.length > 1 ? 's' : ''} ${listed(tick(filters))}`] : []),
    ...other,
  ];
  if (!named.length) return undefined;
  const total = stages.length + filters.length + other.length;
  return (
    `raw LogQL may only select streams and count their lines: ${listed(named)} ${total > 1 ? 'are' : 'is'} not allowed. ` +
    'Pipeline stages run on the unredacted lines, so they could rewrite a secret past redaction (line_format, ' +
    'label_format, template functions) or test its value (line filters, parsers with label filters). ' +
    `${RAW_LOGQL_ALLOWED} To see matching lines, filter lines with labels and contains instead (contains is matched on the redacted lines)`
  );
}

const tick = (xs: string[]) => xs.map((x) => `\`${x}\``);

// "a", "a and b", "a, b and c"
function listed(xs: string[]): string {
  return xs.length > 1 ? `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}` : (xs[0] ?? '');
}

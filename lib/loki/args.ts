/**
 * Argument shapes for asking the Loki client, as zod schemas: the MCP tools take them
 * from the model, and anything else reading a query from JSON can reuse them.
 * Deeper checks (label names, durations, bounds) happen in the client, whose
 * messages say what is allowed.
 */
import { z } from 'zod';
import type { TimeRangeInput } from './time-range.ts';
import type { LabelMatcher } from './types.ts';

export const labelsArg = z
  .record(
    z.string(),
    z.union([z.string(), z.object({ op: z.enum(['=', '!=', '=~', '!~']), value: z.string() }).strict()], {
      error: 'each label takes a string (equality) or {"op": "=" | "!=" | "=~" | "!~", "value": string}',
    }),
  )
  .describe(
    'Label matchers, e.g. {"service_name": "api", "level": {"op": "=~", "value": "error|warn"}}. ' +
      'A string means equality; regexes are RE2 and match the whole value.',
  );

export const timeRangeArg = z
  .union([
    z.string().describe('A duration ending now (or at `before`): "15m", "2h", "1h30m", "24h".'),
    z.object({ start: z.string(), end: z.string() }).strict().describe('ISO-8601 bounds, e.g. {"start": "2026-01-05T10:00:00Z", "end": "2026-01-05T10:30:00Z"}.'),
  ])
  .describe('The time range to search. Bounded by the server (mcp.loki.maxRangeHours).') satisfies z.ZodType<TimeRangeInput>;

export function toMatchers(labels: z.infer<typeof labelsArg>): LabelMatcher[] {
  return Object.entries(labels).map(([name, v]) => (typeof v === 'string' ? { name, op: '=', value: v } : { name, op: v.op, value: v.value }));
}

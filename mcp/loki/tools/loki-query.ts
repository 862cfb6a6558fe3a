/** loki_query: log lines for label matchers (or bounded raw LogQL), redacted and capped. */
import { z } from 'zod';
import {
  checkLimit,
  checkRawLogQL,
  formatResult,
  hasPositiveMatcher,
  labelsArg,
  LokiError,
  plural,
  resolveTimeRange,
  timeRangeArg,
  toMatchers,
  validateMatchers,
  type BackendResult,
  type TimeRange,
} from '../../../lib/loki/index.ts';
import { defineTool, text } from '../../shared/tool.ts';
import { refuseHiddenMatchers, refuseSecretLabels, selectorMatchers } from '../secret-labels.ts';
import type { LokiToolContext } from '../server.ts';

export const lokiQuery = defineTool({
  name: 'loki_query',
  title: 'Query logs',
  description:
    'Read log lines from Loki (or the configured log files) for label matchers, optionally only lines containing ' +
    'some text. Use it to see what a service logged around an error. Lines come back oldest first, redacted ' +
    '(secrets masked, user ids and emails hashed) and capped in lines and bytes; the answer says when it was ' +
    'truncated. `contains` is matched on the redacted lines, so text inside a masked secret never matches. ' +
    'A label whose value answers show hashed (a user id, an email) is matched by that hash ({"user_id": "<user:0123456789ab>"}), ' +
    'never by its raw value; regexes other than lists of plain values (error|warn) are matched on the values as shown, ' +
    'after a query on the other labels. ' +
    '`logql` accepts raw LogQL for line counts over time (count_over_time, rate, sum/avg/max/topk... by stream labels), ' +
    'only with an explicit time_range and limit; its selectors may use = and != with values shown as they are, and =~ and !~ ' +
    'only listing such values or as .+ / .*; it may not use pipeline stages (line filters |= != |~ !~, parsers, ' +
    'label filters, line_format, label_format): Loki runs them on the unredacted lines. Filter lines with labels and contains.',
  input: {
    labels: labelsArg.optional(),
    time_range: timeRangeArg.optional().describe('Default "1h". Required with logql.'),
    contains: z
      .union([z.string().min(1).max(500), z.array(z.string().min(1).max(500)).min(1).max(5)])
      .optional()
      .describe(
        'Text every returned line must contain (case-sensitive), as shown: matched after redaction, so a masked value ' +
          'matches only as its mask (password=[REDACTED]). Several strings must all occur. With Loki, the newest ' +
          '(or oldest) mcp.loki.scanLines lines of the range are searched; the answer says when that cut the search.',
      ),
    limit: z.number().int().positive().optional().describe('Most lines to return; the server caps it (mcp.loki.maxLines, default 200).'),
    direction: z.enum(['backward', 'forward']).optional().describe('Which end of the range the limit keeps: backward (default) the newest lines.'),
    logql: z
      .string()
      .min(1)
      .max(2000)
      .optional()
      .describe(
        'Raw LogQL instead of labels/contains, for counts: stream selectors, count_over_time/rate and aggregations ' +
          'by or without stream labels, e.g. sum by (level) (count_over_time({service_name="api"}[5m])). No pipeline ' +
          'stages (|=, | json, | line_format, ...), and no label matched on a value answers hide (a raw user id or email, ' +
          'a regex other than a list of values). Needs time_range and limit; Loki backend only.',
      ),
  },
  annotations: { title: 'Query logs', readOnlyHint: true, openWorldHint: true },
  async handler(args, ctx: LokiToolContext) {
    const s = ctx.settings;
    const limit = args.limit ?? Math.min(100, s.maxLines);
    const direction = args.direction ?? 'backward';
    let range: TimeRange;
    let result: BackendResult;
    if (args.logql !== undefined) {
      const alsoGiven = [args.labels && 'labels', args.contains && 'contains'].filter((x): x is string => Boolean(x));
      checkRawLogQL({ logql: args.logql, hasTimeRange: args.time_range !== undefined, limit: args.limit, alsoGiven }, s);
      const selectors = selectorMatchers(args.logql);
      refuseSecretLabels(selectors.map((m) => m.name), ctx.client.redactor.text, true);
      refuseHiddenMatchers(selectors, ctx.client.redactor.text);
      checkLimit(limit, s.maxLines);
      range = resolveTimeRange(args.time_range!, { now: ctx.now(), maxRangeHours: s.maxRangeHours });
      result = await ctx.client.queryLogQL(args.logql, { range, limit, direction });
    } else {
      const matchers = toMatchers(args.labels ?? {});
      if (!matchers.length) {
        throw new LokiError('labels is required: give at least one label matcher such as {"service_name": "api"} (or logql with time_range and limit)');
      }
      validateMatchers(matchers);
      if (!hasPositiveMatcher(matchers)) {
        throw new LokiError('at least one label matcher must select streams: "=" with a non-empty value, or "=~" with a regex that does not match ""');
      }
      checkLimit(limit, s.maxLines);
      range = resolveTimeRange(args.time_range ?? '1h', { now: ctx.now(), maxRangeHours: s.maxRangeHours });
      const contains = args.contains === undefined ? [] : [args.contains].flat();
      result = await ctx.client.query({ matchers, contains, range, limit, direction });
    }
    const lines = result.series ? `${result.series.length} series` : plural(result.entries.length, 'line');
    const answer = formatResult(result, {
      header: [`${lines} from ${ctx.client.where} for ${result.query}`, `between ${range.start.toISOString()} and ${range.end.toISOString()}, oldest first.`],
      maxLines: s.maxLines,
      maxBytes: s.maxBytes,
      direction,
      showLabels: ctx.client.backend === 'http',
      limitHint: `These are the ${direction === 'backward' ? 'newest' : 'oldest'} ${limit}. Narrow time_range, add labels or contains, or raise limit (at most ${s.maxLines}).`,
    });
    return text(answer);
  },
});

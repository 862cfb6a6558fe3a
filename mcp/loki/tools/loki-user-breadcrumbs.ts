/** loki_user_breadcrumbs: one user's log lines before an error, oldest first. */
import { z } from 'zod';
import {
  checkLimit,
  formatResult,
  labelsArg,
  LokiError,
  plural,
  resolveTimeRange,
  timeRangeArg,
  toMatchers,
  userBreadcrumbs,
  validateMatchers,
} from '../../../lib/loki/index.ts';
import { defineTool, text } from '../../shared/tool.ts';
import type { LokiToolContext } from '../server.ts';

export const lokiUserBreadcrumbs = defineTool({
  name: 'loki_user_breadcrumbs',
  title: "A user's requests before an error",
  description:
    "The log lines of one user (their requests) in a time range before an error, oldest first, to reproduce what " +
    'they did. user_id is the hash a ticket or a log line shows (user:<12 hex>, also written <user:...>, or <email:...>); ' +
    'a raw id only when answers show it as it is (one they show hashed would confirm a guess, so it is refused). Give ' +
    'the error time as `before` (or as time_range.end). Lines are redacted and capped; the answer says when it was truncated.',
  input: {
    user_id: z.string().min(1).max(200).describe('The user as the ticket or a log line shows it (user:0123456789ab, <email:0123456789ab>).'),
    time_range: timeRangeArg,
    before: z.string().optional().describe('ISO-8601 time of the error: lines from then on are left out; a duration time_range ends here.'),
    labels: labelsArg.optional().describe('Optional matchers narrowing the search, e.g. {"service_name": "web"}.'),
    limit: z.number().int().positive().optional().describe('Most lines to return (default and cap: mcp.loki.maxLines).'),
  },
  annotations: { title: "A user's requests before an error", readOnlyHint: true, openWorldHint: true },
  async handler(args, ctx: LokiToolContext) {
    const s = ctx.settings;
    const before = args.before === undefined ? undefined : new Date(args.before);
    if (before && Number.isNaN(before.getTime())) {
      throw new LokiError(`before ${JSON.stringify(args.before)} is not an ISO-8601 time such as 2026-01-05T10:30:00Z`);
    }
    const range = resolveTimeRange(args.time_range, { now: ctx.now(), maxRangeHours: s.maxRangeHours, anchor: before });
    if (before && range.end > before) range.end = before;
    if (range.start >= range.end) throw new LokiError(`time_range starts at or after before (${before?.toISOString()}): nothing precedes the error in it`);
    const limit = args.limit ?? s.maxLines;
    checkLimit(limit, s.maxLines);
    const matchers = toMatchers(args.labels ?? {});
    validateMatchers(matchers);
    const { result, userHash } = await userBreadcrumbs(ctx.client, { userId: args.user_id, range, matchers, limit });
    const answer = formatResult(result, {
      header: [
        `${plural(result.entries.length, 'line')} of ${userHash} (redacted lines show <${userHash}>) from ${ctx.client.where}`,
        `between ${range.start.toISOString()} and ${range.end.toISOString()}, oldest first.`,
      ],
      maxLines: s.maxLines,
      maxBytes: s.maxBytes,
      direction: 'backward',
      showLabels: false,
      limitHint: `These are the latest ${limit} before the end of the range. Start the range later to see fewer, or narrow it with labels.`,
    });
    return text(answer);
  },
});

/**
 * The latest error lines for a service / route / message: what the control plane
 * attaches to an alert that arrived without a stack trace.
 */
import type { LokiClient } from './client.ts';
import type { BackendResult, LabelMatcher } from './types.ts';

// Words that mark a line as an error, matched case-insensitively.
const ERROR_WORDS = ['error', 'exception', 'fatal', 'panic', 'traceback'];

export interface LatestErrorsRequest {
  service?: string;
  /** Text the line must contain, e.g. a request path. */
  route?: string;
  contains?: string;
  since: Date;
  /** Default: now. */
  until?: Date;
  /** Default 20, never more than `maxLines`. */
  limit?: number;
  signal?: AbortSignal;
}

export async function latestErrors(client: LokiClient, req: LatestErrorsRequest): Promise<BackendResult> {
  const { serviceLabel, maxLines, maxRangeHours } = client.settings;
  const end = req.until ?? new Date();
  // Enrichment must not fail on a long-running alert: look at the newest allowed span.
  const start = new Date(Math.max(req.since.getTime(), end.getTime() - maxRangeHours * 3_600_000));
  const matchers: LabelMatcher[] = req.service ? [{ name: serviceLabel, op: '=', value: req.service }] : [];
  return client.query(
    {
      matchers,
      contains: [req.route, req.contains].filter((s): s is string => Boolean(s)),
      anyOf: ERROR_WORDS,
      range: { start: start < end ? start : new Date(end.getTime() - 60_000), end },
      limit: Math.min(req.limit ?? 20, maxLines),
      direction: 'backward',
    },
    { signal: req.signal },
  );
}

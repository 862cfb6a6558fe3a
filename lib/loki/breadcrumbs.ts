/**
 * A user's breadcrumbs: their log lines in the range before an error, oldest first.
 * Tickets only ever hold one-way user hashes (intake redacts ids), so the id may be
 * given raw or as that hash (`user:<12 hex>`, also `<user:...>` as it appears in
 * redacted text); a hash can only be matched on raw lines, before redaction.
 */
import type { LokiClient } from './client.ts';
import { fieldValue } from './fields.ts';
import type { BackendResult, LabelMatcher, LogEntry, TimeRange } from './types.ts';

export interface BreadcrumbRequest {
  userId: string;
  range: TimeRange;
  /** Narrow to a service or job; without any, the HTTP backend uses `defaultSelector`. */
  matchers?: LabelMatcher[];
  limit: number;
  signal?: AbortSignal;
}

export interface Breadcrumbs {
  result: BackendResult;
  /** The user as redacted lines show them (`user:<hash>`). */
  userHash: string;
}

const HASHED = /^<?(user:[0-9a-f]{12})>?$/;

export async function userBreadcrumbs(client: LokiClient, req: BreadcrumbRequest): Promise<Breadcrumbs> {
  const { userLabel, parser } = client.settings;
  const hashed = HASHED.exec(req.userId.trim())?.[1];
  const userHash = hashed ?? client.redactor.hashUser(req.userId);
  const keep = hashed
    ? (e: LogEntry) => {
        const v = fieldValue(e, userLabel, parser);
        return v !== undefined && client.redactor.hashUser(v) === hashed;
      }
    : undefined;
  const result = await client.query(
    {
      matchers: req.matchers ?? [],
      contains: [],
      field: { label: userLabel, parser, value: hashed ? undefined : req.userId },
      range: req.range,
      limit: req.limit,
      direction: 'backward',
    },
    { signal: req.signal, keep },
  );
  return { result, userHash };
}

/**
 * A user's breadcrumbs: their log lines in the range before an error, oldest first.
 * Tickets only ever hold one-way user hashes (intake redacts ids), so the id is given as
 * that hash (`user:<12 hex>`, also `<user:...>` as it appears in redacted text, or the
 * `email:` hash of an address); a hash can only be matched on raw lines, before
 * redaction. A raw id is taken only when answers show it as it is (`admin`): one they
 * show hashed (`42`, an email) would confirm a guess, by the lines that come back and by
 * the hash the answer names.
 */
import type { LokiClient } from './client.ts';
import { fieldValue, redactedValue } from './fields.ts';
import { LokiError, type BackendResult, type LabelMatcher, type LogEntry, type TimeRange } from './types.ts';

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

const HASHED = /^<?((?:user|email):[0-9a-f]{12})>?$/;

export async function userBreadcrumbs(client: LokiClient, req: BreadcrumbRequest): Promise<Breadcrumbs> {
  const { userLabel, parser } = client.settings;
  const redact = client.redactor.text;
  const hashed = HASHED.exec(req.userId.trim())?.[1];
  if (!hashed && redactedValue(userLabel, req.userId, redact) !== req.userId) {
    // Not even the hash is named: it would tie the guess to the hash a ticket shows.
    throw new LokiError(
      `user_id: answers show this id as a one-way hash, never as given, and matching it on the raw lines would confirm a guess. ` +
        'Give the hash a ticket or a log line showed (user:0123456789ab, <user:...> or <email:...>); to find it, look for the ' +
        "user's requests with loki_query (labels, contains) and read the hash off their lines",
    );
  }
  const userHash = hashed ?? client.redactor.hashUser(req.userId);
  // The id as the user's lines show it: user:<hash> for an id (hashUser), <email:hash> for an address.
  const keep = hashed
    ? (e: LogEntry) => {
        const v = fieldValue(e, userLabel, parser);
        return v !== undefined && (client.redactor.hashUser(v) === hashed || redactedValue(userLabel, v, redact) === `<${hashed}>`);
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

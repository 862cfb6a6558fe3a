/** Helpers shared by the HTTP triggers. */
import type { Context } from 'hono';
import type { AppDeps } from '../app.ts';
import { ReplayError, type AcceptOptions, type AcceptResult } from '../intake/index.ts';
import type { TriggerEvent } from '../types.ts';
import { badRequest, HttpError, unauthorized } from '../http-error.ts';
import { requestNonce } from './auth.ts';

/** The request's media type without parameters, lower case ('' when none was sent). */
export function mediaType(c: Context): { type: string; essence: string } {
  const type = c.req.header('content-type') ?? '';
  return { type, essence: type.split(';')[0]!.trim().toLowerCase() };
}

/** Parse the body as JSON; a 400 that says why when it is not. */
export async function readJson(c: Context): Promise<unknown> {
  // The media type itself, not any mention of json: "text/plain; x=json", or no type at
  // all, is what a web page may post cross-site without asking, and must not file
  // tickets on loopback.
  const { type, essence } = mediaType(c);
  if (!type) throw new HttpError(415, 'unsupported_media_type', 'expected a JSON body: send content-type: application/json');
  if (essence !== 'application/json' && !/^application\/[\w.+-]+\+json$/.test(essence)) {
    throw new HttpError(415, 'unsupported_media_type', `expected a JSON body, got content-type ${type}`);
  }
  const text = await c.req.text();
  if (!text.trim()) throw badRequest('empty body: expected a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`body is not valid JSON: ${(err as Error).message}`);
  }
}

/** The webhook reply: what was stored and what it joined. */
export function summarize(results: AcceptResult[]) {
  return {
    accepted: results.filter((r) => r.status !== 'duplicate').length,
    duplicates: results.filter((r) => r.status === 'duplicate').length,
    results: results.map((r) => ({
      id: r.sourceEventId,
      status: r.status,
      ticket: r.ticketId,
      fingerprint: r.fingerprint,
      state: r.state,
      ...(r.reason ? { reason: r.reason } : {}),
    })),
  };
}

/**
 * Store a request's events (group commit), using up the request's one-time value (a
 * signature, a token) in the same transaction; a replay is a 401. Wakes the settle
 * scheduler once committed.
 */
export async function acceptRequest(c: Context, deps: AppDeps, events: TriggerEvent[], opts: AcceptOptions = {}): Promise<AcceptResult[]> {
  const nonce = opts.nonce ?? requestNonce(c);
  let results: AcceptResult[];
  try {
    results = await deps.intake.acceptQueued(events, nonce ? { ...opts, nonce } : opts);
  } catch (err) {
    if (err instanceof ReplayError) throw unauthorized(err.message);
    throw err;
  }
  deps.onAccepted?.(results);
  return results;
}

/** Helpers shared by the HTTP triggers. */
import type { Context } from 'hono';
import type { AppDeps } from '../app.ts';
import { ReplayError, type AcceptOptions, type AcceptResult } from '../intake/index.ts';
import type { TriggerEvent } from '../types.ts';
import { HttpError, parseJsonText, unauthorized } from '../http-error.ts';
import type { AlertsAccepted } from '../intake/writer.ts';
import { parseAlertWebhook, type AlertParseOptions } from './alerts.ts';
import { requestNonce } from './auth.ts';

/** The request's media type without parameters, lower case ('' when none was sent). */
export function mediaType(c: Context): { type: string; essence: string } {
  const type = c.req.header('content-type') ?? '';
  return { type, essence: type.split(';')[0]!.trim().toLowerCase() };
}

/** Parse the body as JSON; a 400 that says why when it is not. */
export async function readJson(c: Context): Promise<unknown> {
  return parseJsonText(await readJsonText(c));
}

/** The body of a request that says it is JSON, unparsed; a 415 when it does not say so. */
export async function readJsonText(c: Context): Promise<string> {
  // The media type itself, not any mention of json: "text/plain; x=json", or no type at
  // all, is what a web page may post cross-site without asking, and must not file
  // tickets on loopback.
  const { type, essence } = mediaType(c);
  if (!type) throw new HttpError(415, 'unsupported_media_type', 'expected a JSON body: send content-type: application/json');
  if (essence !== 'application/json' && !/^application\/[\w.+-]+\+json$/.test(essence)) {
    throw new HttpError(415, 'unsupported_media_type', `expected a JSON body, got content-type ${type}`);
  }
  return c.req.text();
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

/** Refused alerts named in the log, per request; the reply lists them all. */
const LOGGED_PROBLEMS = 5;

/**
 * Alerts a webhook refused while the rest of its batch was taken: Grafana and
 * Alertmanager take the 200 as delivered and never read its body, so the log is the only
 * place an operator learns of them.
 */
export function logRejected(c: Context, deps: AppDeps, rejected: Array<{ index: number; problem: string }>): void {
  if (!rejected.length) return;
  deps.logger.warn('alert webhook: alerts refused; the rest of the batch was taken', {
    path: c.req.path,
    refused: rejected.length,
    // A problem may quote a little of the value it refuses: redacted as stored text is.
    problems: rejected.slice(0, LOGGED_PROBLEMS).map((r) => deps.intake.redactText(r.problem)),
  });
}

/**
 * Store a request's events (group commit), using up the request's one-time value (a
 * signature, a token) in the same transaction; a replay is a 401. Wakes the settle
 * scheduler once committed.
 */
export async function acceptRequest(c: Context, deps: AppDeps, events: TriggerEvent[], opts: AcceptOptions = {}): Promise<AcceptResult[]> {
  return stored(c, deps, opts, (o) => deps.intake.acceptQueued(events, o), (r) => r);
}

/**
 * An alert webhook (Grafana, Alertmanager): its body parsed, validated and stored. With
 * intake's writer thread, all of that happens there and this thread only passes the
 * body on; a body that is not a valid webhook is the same 400 either way.
 */
export async function acceptAlertWebhook(c: Context, deps: AppDeps, parse: AlertParseOptions): Promise<AlertsAccepted> {
  const text = await readJsonText(c);
  const writer = deps.intake.writer;
  return stored(
    c,
    deps,
    {},
    async (o) => {
      if (writer) return writer.submitAlerts({ text, latency: Boolean(parse.forceLatency) }, o);
      const p = parseAlertWebhook(parseJsonText(text), parse);
      return { source: p.source, rejected: p.rejected, ignored: p.ignored, results: await deps.intake.acceptQueued(p.events, o) };
    },
    (r) => r.results,
  );
}

async function stored<T>(c: Context, deps: AppDeps, opts: AcceptOptions, store: (opts: AcceptOptions) => Promise<T>, results: (r: T) => AcceptResult[]): Promise<T> {
  const nonce = opts.nonce ?? requestNonce(c);
  let r: T;
  try {
    r = await store(nonce ? { ...opts, nonce } : opts);
  } catch (err) {
    if (err instanceof ReplayError) throw unauthorized(err.message);
    throw err;
  }
  deps.onAccepted?.(results(r));
  return r;
}

/**
 * POST /slack/events: the Slack Events API over HTTP, as a Bolt `Receiver` that
 * lives on the Hono app (https://docs.slack.dev/tools/bolt-js/concepts/receiver).
 *
 * Order per request: verify the signature → parse → answer url_verification →
 * admit (commit to the store, dedupe retries by event_id) → hand to Bolt → respond
 * as soon as Bolt acks. Slack wants the 200 within 3 seconds and retries otherwise
 * (https://docs.slack.dev/apis/events-api/#responding), so listeners do their Web
 * API calls after the ack; the commit happens before it, so a crash after the ack
 * loses nothing. Interactivity (`payload=` forms) shares the endpoint and the
 * signature check; `block_actions` (Approve / Skip buttons) go to Bolt as well.
 */
import type { App, Receiver, ReceiverEvent } from '@slack/bolt';
import type { Hono } from 'hono';
import { createHmac } from 'node:crypto';
import { badRequest, HttpError, unauthorized } from '../http-error.ts';
import type { Logger } from '../log.ts';
import { safeEqual } from './auth.ts';

/** What the trigger decided about an event before it is acknowledged. */
export interface Admission {
  /** Acknowledge without processing, and why (a retry of a stored event, a bot's own message). */
  ignored?: string;
  /** Handed to Bolt's listeners in `context`. */
  context?: Record<string, unknown>;
  /** Added to the HTTP response: Slack ignores the body, operators and tests read it. */
  summary?: Record<string, unknown>;
}

export interface SlackEventsReceiverOptions {
  /** Undefined: the endpoint answers 503 naming `signingSecretEnv`. */
  signingSecret: string | undefined;
  signingSecretEnv: string;
  toleranceSeconds: number;
  now: () => Date;
  /** Commit an event_callback durably (or decide to ignore it); runs before the ack. */
  admit: (body: Record<string, unknown>) => Admission;
  logger: Logger;
}

/**
 * How often a refused request carrying Slack's headers is logged at warn: a wrong signing
 * secret or a clock off by minutes refuses every one of Slack's requests, and the refusals
 * themselves are logged at debug only (anyone can send them).
 */
const REFUSED_WARN_MS = 10 * 60_000;

export class SlackEventsReceiver implements Receiver {
  private app: App | undefined;
  private refusedWarnedAt = -Infinity;

  constructor(private readonly opts: SlackEventsReceiverOptions) {}

  init(app: App): void {
    this.app = app;
  }

  // The HTTP server belongs to the Hono app (main.ts); there is nothing to open or close here.
  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  register(hono: Hono): void {
    const o = this.opts;
    hono.post('/slack/events', async (c) => {
      if (!o.signingSecret) {
        throw new HttpError(503, 'not_configured', `slack events endpoint is not configured: set ${o.signingSecretEnv}`);
      }
      const raw = Buffer.from(await c.req.arrayBuffer());
      const signature = c.req.header('x-slack-signature');
      const timestamp = c.req.header('x-slack-request-timestamp');
      const now = o.now().getTime();
      try {
        verifySlackSignature({ signingSecret: o.signingSecret, signature, timestamp, body: raw, nowSeconds: Math.floor(now / 1000), toleranceSeconds: o.toleranceSeconds });
      } catch (err) {
        // Signed and timestamped, as Slack's requests are, yet refused: say so where the
        // operator looks, now and then.
        if (signature && timestamp && now - this.refusedWarnedAt >= REFUSED_WARN_MS) {
          this.refusedWarnedAt = now;
          o.logger.warn(
            `slack request refused (401): if Slack's own requests are refused, mentions and button clicks go unanswered: check that ${o.signingSecretEnv} ` +
              "holds the app's Signing Secret (Basic Information → App Credentials; not its Verification Token) and that this machine's clock is right " +
              '(said at most every 10 minutes)',
            { error: (err as Error).message },
          );
        }
        throw err;
      }
      const { form, body } = parseSlackBody(raw.toString('utf8'), c.req.header('content-type'));

      if (form) {
        // Button clicks go to Bolt's action listeners, which ack at once and act afterwards;
        // other interactivity (shortcuts, modals) is verified and acknowledged, nothing more.
        // Slack wants an empty 200 within 3 seconds
        // (https://docs.slack.dev/interactivity/handling-user-interaction#acknowledgment_response).
        if (body.type === 'block_actions') await this.dispatch({ body });
        else o.logger.debug('slack interactivity payload acknowledged', { type: body.type });
        return c.body(null, 200);
      }
      if (body.type === 'url_verification') {
        // https://docs.slack.dev/reference/events/url_verification: echo the challenge.
        if (typeof body.challenge !== 'string') throw badRequest('url_verification without a "challenge" string');
        return c.json({ challenge: body.challenge });
      }
      if (body.type !== 'event_callback') {
        // e.g. app_rate_limited (https://docs.slack.dev/apis/events-api/#rate-limiting): nothing to store.
        o.logger.warn('slack envelope not handled', { type: body.type });
        return c.json({ ok: true, ignored: `envelope type ${String(body.type)} is not handled` });
      }
      if (typeof body.event_id !== 'string' || !body.event_id) throw badRequest('event_callback without an "event_id"');
      if (!isRecord(body.event) || typeof body.event.type !== 'string') throw badRequest('event_callback without an "event" object with a "type"');
      const mentionProblem = body.event.type === 'app_mention' ? appMentionProblem(body.event) : undefined;
      if (mentionProblem) throw badRequest(`app_mention event field ${mentionProblem}`);

      const retryNum = c.req.header('x-slack-retry-num');
      const retryReason = c.req.header('x-slack-retry-reason');
      const admission = o.admit(body);
      if (admission.ignored) {
        o.logger.info('slack event acknowledged and ignored', { eventId: body.event_id, retryNum, reason: admission.ignored });
        return c.json({ ok: true, ignored: admission.ignored, ...admission.summary });
      }
      await this.dispatch({
        body,
        retryNum: retryNum !== undefined && /^\d+$/.test(retryNum) ? Number(retryNum) : undefined,
        retryReason,
        customProperties: admission.context,
      });
      return c.json({ ok: true, ...admission.summary });
    });
  }

  /** Hand the event to Bolt; resolves when Bolt acks (or finishes without acking). */
  private async dispatch(event: Omit<ReceiverEvent, 'ack'>): Promise<void> {
    const app = this.app;
    if (!app) throw new Error('SlackEventsReceiver used before a Bolt App initialised it');
    let acked!: () => void;
    const ack = new Promise<void>((resolve) => (acked = resolve));
    const processing = app.processEvent({ ...event, ack: () => Promise.resolve(acked()) });
    // Listener failures after the ack cannot reach Slack any more; they are logged.
    processing.catch((err: unknown) => this.opts.logger.error('slack event processing failed', { error: String(err) }));
    await Promise.race([ack, processing]);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface SlackSignatureInput {
  signingSecret: string;
  signature: string | undefined;
  timestamp: string | undefined;
  body: Buffer;
  nowSeconds: number;
  toleranceSeconds: number;
}

/**
 * Slack's request signing (https://docs.slack.dev/authentication/verifying-requests-from-slack):
 * `v0=` + hex HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<raw body>` with the
 * signing secret, compared in constant time; a timestamp outside the window is
 * refused so a captured request cannot be replayed later. Throws a 401 HttpError.
 */
export function verifySlackSignature(i: SlackSignatureInput): void {
  if (!i.signature) throw unauthorized('missing X-Slack-Signature header');
  if (!i.timestamp) throw unauthorized('missing X-Slack-Request-Timestamp header');
  if (!/^\d+$/.test(i.timestamp)) throw unauthorized('X-Slack-Request-Timestamp is not a Unix timestamp in seconds');
  const skew = Math.abs(i.nowSeconds - Number(i.timestamp));
  if (skew > i.toleranceSeconds) {
    throw unauthorized(`stale request: X-Slack-Request-Timestamp is ${skew} s from now (window ${i.toleranceSeconds} s)`);
  }
  const expected =
    'v0=' + createHmac('sha256', i.signingSecret).update(`v0:${i.timestamp}:`).update(i.body).digest('hex');
  if (!safeEqual(i.signature.trim(), expected)) {
    throw unauthorized('X-Slack-Signature does not match the body (is the signing secret right?)');
  }
}

/**
 * What a mention needs to become a report and get its reply
 * (https://docs.slack.dev/reference/events/app_mention): where it was posted, when, and
 * its text when it has any.
 */
function appMentionProblem(e: Record<string, unknown>): string | undefined {
  for (const k of ['channel', 'ts']) if (typeof e[k] !== 'string' || !e[k]) return `"${k}" must be a non-empty string`;
  for (const k of ['text', 'thread_ts', 'user']) if (k in e && e[k] !== null && typeof e[k] !== 'string') return `"${k}" must be a string`;
  return undefined;
}

/**
 * Events API bodies are JSON; interactivity arrives form-encoded as
 * `payload=<JSON>` (https://docs.slack.dev/interactivity/handling-user-interaction).
 * Either way the result must be an object with a string `type`; a 400 says why not.
 */
export function parseSlackBody(text: string, contentType: string | undefined): { form: boolean; body: Record<string, unknown> } {
  const form = /application\/x-www-form-urlencoded/i.test(contentType ?? '');
  let json = text;
  if (form) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw badRequest('form body without a "payload" field (Slack interactivity sends payload=<JSON>)');
    json = payload;
  } else if (!text.trim()) {
    throw badRequest('empty body: expected a Slack JSON envelope');
  }
  let body: unknown;
  try {
    body = JSON.parse(json);
  } catch (err) {
    throw badRequest(`${form ? 'payload' : 'body'} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isRecord(body)) throw badRequest(`${form ? 'payload' : 'body'} must be a JSON object`);
  if (typeof body.type !== 'string' || !body.type) {
    throw badRequest(`${form ? 'payload' : 'body'} has no "type" field (expected url_verification, event_callback or an interactivity type)`);
  }
  const malformed = envelopeProblem(body);
  if (malformed) throw badRequest(`${form ? 'payload' : 'body'} field ${malformed}`);
  return { form, body };
}

// Bolt reads these envelope fields without checking them (`user.id`, `channel.id`,
// `actions[0]`, `authorizations[0].team_id`, `'id' in event.channel`): Slack always sends
// them so shaped, and a signed body that does not is refused here, naming the field,
// instead of crashing Bolt into a 500 that Slack would retry.
const OBJECT_FIELDS = ['event', 'user', 'channel', 'view'];
const NULLABLE_OBJECT_FIELDS = ['team', 'enterprise', 'container', 'message'];
const LIST_FIELDS = ['actions', 'authorizations'];

function envelopeProblem(body: Record<string, unknown>): string | undefined {
  for (const k of OBJECT_FIELDS) if (k in body && !isRecord(body[k])) return `"${k}" must be an object`;
  for (const k of NULLABLE_OBJECT_FIELDS) if (k in body && body[k] !== null && !isRecord(body[k])) return `"${k}" must be an object or null`;
  for (const k of LIST_FIELDS) {
    const v = body[k];
    if (k in body && !(Array.isArray(v) && v.every(isRecord))) return `"${k}" must be a list of objects`;
  }
  if (body.type === 'block_actions' && !isRecord(body.user)) return '"user" is required in block_actions';
  const event = body.event;
  if (isRecord(event)) {
    // Bolt reads event.user.id when user is an object (null is one), 'creator' in
    // event.channel when it is not a string, and event.subteam.created_by.
    if ('channel' in event && typeof event.channel !== 'string' && !isRecord(event.channel)) return '"event.channel" must be a string or an object';
    if (event.user === null) return '"event.user" must be a string or an object';
    if ('subteam' in event && !isRecord(event.subteam)) return '"event.subteam" must be an object';
    if ('item' in event && !isRecord(event.item)) return '"event.item" must be an object';
  }
  return undefined;
}

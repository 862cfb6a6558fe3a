/**
 * Email triggers:
 * - POST /triggers/email/mailgun: a Mailgun inbound route (form fields). The
 *   signature is HMAC-SHA256(timestamp + token) with the signing key; timestamps
 *   older than triggers.email.toleranceSeconds and reused tokens are refused
 *   (Mailgun's replay advice).
 * - POST /triggers/email/raw: an RFC 5322 message as the body (content-type
 *   message/rfc822), bearer token.
 * Both take bodies up to triggers.email.maxBodyBytes (app.ts), not server.maxBodyBytes:
 * a mail with a screenshot is larger than a webhook. Mails are parsed on a thread of their
 * own within triggers.email.parseTimeoutSeconds (email-parse.ts), after the signature
 * checks; one that runs past it is a 413 and nothing is stored.
 */
import type { Context, Hono } from 'hono';
import type { AppDeps } from '../app.ts';
import { badRequest, HttpError, unauthorized } from '../http-error.ts';
import { credentialAuth } from './auth.ts';
import { acceptRequest, mediaType, summarize } from './common.ts';
import { forwardedMessageTexts, MAILGUN_CLOCK_SKEW_SECONDS, MAX_ATTACHED_MESSAGES, MAX_MIME_LINES, mimeLines, parseMailgunForm, parseRawEmail, tooManyLines, verifyMailgunSignature } from './email.ts';
import type { AcceptOptions } from '../intake/index.ts';
import type { TriggerEvent } from '../types.ts';

/**
 * What the raw route takes. Not text/plain, a form or no type at all: those a web page
 * may post cross-site without asking, and a loopback install without a token would
 * file them as reports.
 */
const RAW_TYPES = ['message/rfc822', 'message/global', 'application/octet-stream'];

export function registerEmail(app: Hono, deps: AppDeps): void {
  const cfg = deps.config.triggers.email;
  if (!cfg.enabled) return;
  const signingKey = deps.config.secrets.get(cfg.mailgunSigningKeyEnv);
  const limits = { timeoutSeconds: cfg.parseTimeoutSeconds };

  app.post('/triggers/email/mailgun', async (c) => {
    if (!signingKey) {
      throw new HttpError(503, 'not_configured', `mailgun trigger is not configured: set ${cfg.mailgunSigningKeyEnv}`);
    }
    const { fields, messages } = await formFields(c);
    verifyMailgunSignature(fields, signingKey, {
      nowSeconds: Math.floor(deps.store.now().getTime() / 1000),
      toleranceSeconds: cfg.toleranceSeconds,
      skewSeconds: MAILGUN_CLOCK_SKEW_SECONDS,
    });
    // Used up only when the message is stored: Mailgun retries a request that failed
    // with the same token, and that retry must get in. Kept as long as its signature is
    // accepted (the window plus the skew), so no replay outlives the record of its token.
    const nonce = { scope: 'mailgun-token', value: fields.token!, keepSeconds: cfg.toleranceSeconds + MAILGUN_CLOCK_SKEW_SECONDS };
    if (deps.store.nonceUsed(nonce.scope, nonce.value, nonce.keepSeconds)) {
      throw unauthorized('replayed request: this Mailgun token was already used');
    }
    const attached = await Promise.all(messages.map(async (m) => new Uint8Array(await m.arrayBuffer())));
    // One budget for all of them, as the raw route has for its one message (MAX_MIME_LINES).
    if (attached.reduce((n, bytes) => n + mimeLines(bytes), 0) > MAX_MIME_LINES) throw tooManyLines('the attached mails have');
    const forwarded = (await forwardedMessageTexts(attached, limits)).filter((text): text is string => !!text);
    const ev = parseMailgunForm(fields, forwarded);
    const results = await acceptRequest(c, deps, [ev], { ...(await classify(deps, ev)), nonce });
    return c.json({ source: 'email', ...summarize(results) });
  });

  app.post(
    '/triggers/email/raw',
    credentialAuth({ name: 'raw email trigger', token: deps.config.secrets.get(cfg.rawTokenEnv) }),
    async (c) => {
      const { type, essence } = mediaType(c);
      if (!RAW_TYPES.includes(essence)) {
        throw new HttpError(
          415,
          'unsupported_media_type',
          `expected an RFC 5322 message with content-type message/rfc822, got ${type ? `content-type ${type}` : 'no content-type'}`,
        );
      }
      const raw = new Uint8Array(await c.req.arrayBuffer());
      const ev = await parseRawEmail(raw, limits);
      const results = await acceptRequest(c, deps, [ev], await classify(deps, ev));
      return c.json({ source: 'email', ...summarize(results) });
    },
  );
}

/**
 * Mailgun's form fields, and its file parts that are mails (a forward as attachment arrives
 * as `attachment-N` of type message/rfc822); other attachments are left unread. A body
 * that is no form is a 400 saying so, not a 500.
 */
async function formFields(c: Context): Promise<{ fields: Record<string, string>; messages: File[] }> {
  const type = c.req.header('content-type') ?? '';
  const body = Buffer.from(await c.req.arrayBuffer());
  // Counted before anything is parsed, and before the signature can be checked (it is one
  // of the fields): a body of millions of empty fields, well within the size limit, took
  // seconds and a gigabyte to parse, for anyone who can reach the route.
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  const parts = boundary ? occurrences(body, `--${boundary}`) - 1 : occurrences(body, '&') + 1;
  if (parts > MAX_FORM_FIELDS) throw new HttpError(413, 'payload_too_large', `the form has ${parts} fields, over the ${MAX_FORM_FIELDS} a Mailgun route posts at most`);
  let form: FormData | URLSearchParams;
  try {
    form = /^multipart\/form-data/i.test(type) ? await new Response(body, { headers: { 'content-type': type } }).formData() : new URLSearchParams(body.toString('utf8'));
  } catch (err) {
    throw badRequest(`body is not a form (multipart/form-data or application/x-www-form-urlencoded): ${(err as Error).message}`);
  }
  const fields: Record<string, string> = {};
  const messages: File[] = [];
  for (const [k, v] of form.entries()) {
    if (typeof v === 'string') fields[k] = v;
    else if (v instanceof File && /^message\/(rfc822|global)\s*(;|$)/i.test(v.type) && messages.length < MAX_ATTACHED_MESSAGES) messages.push(v);
  }
  return { fields, messages };
}

/** Fields of a Mailgun form at most: its route posts a few dozen, and attachments. */
const MAX_FORM_FIELDS = 500;

function occurrences(haystack: Buffer, needle: string): number {
  let n = 0;
  for (let at = haystack.indexOf(needle); at !== -1 && n <= MAX_FORM_FIELDS + 1; at = haystack.indexOf(needle, at + needle.length)) n++;
  return n;
}

/**
 * The model classifier's decision (when configured), for intake to use instead of the
 * rules. The model sees the report redacted, as the agent will; what it answers is
 * redacted again before it is stored.
 *
 * The service and route it read go on labels (model_service, model_route), which the
 * ticket and the brief show and intake redacts with the rest of the event, and never on
 * ev.service / ev.route: those are fingerprinted, and the model's guesses vary from call
 * to call (the rules, when the model is busy or slow, guess none), so one error reported
 * twice would become two tickets.
 */
async function classify(deps: AppDeps, ev: TriggerEvent): Promise<AcceptOptions> {
  if (!deps.classifier) return {};
  const redact = (s: string) => deps.intake.redactText(s);
  const c = await deps.classifier(redact(`${ev.title}\n${ev.message}`));
  if (c.service) ev.labels.model_service = c.service;
  if (c.route) ev.labels.model_route = c.route;
  return { classifications: new Map([[ev.sourceEventId, { ...c, reason: redact(c.reason) }]]) };
}

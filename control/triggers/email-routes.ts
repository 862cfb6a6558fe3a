/**
 * Email triggers:
 * - POST /triggers/email/mailgun: a Mailgun inbound route (form fields). The
 *   signature is HMAC-SHA256(timestamp + token) with the signing key; stale
 *   timestamps and reused tokens are refused (Mailgun's replay advice).
 * - POST /triggers/email/raw: an RFC 5322 message as the body, bearer token.
 */
import type { Hono } from 'hono';
import type { AppDeps } from '../app.ts';
import { HttpError, unauthorized } from '../http-error.ts';
import { credentialAuth } from './auth.ts';
import { summarize } from './common.ts';
import { parseMailgunForm, parseRawEmail, verifyMailgunSignature } from './email.ts';
import type { AcceptOptions } from '../intake/index.ts';
import type { TriggerEvent } from '../types.ts';

export function registerEmail(app: Hono, deps: AppDeps): void {
  const cfg = deps.config.triggers.email;
  if (!cfg.enabled) return;
  const signingKey = deps.config.secrets.get(cfg.mailgunSigningKeyEnv);

  app.post('/triggers/email/mailgun', async (c) => {
    if (!signingKey) {
      throw new HttpError(503, 'not_configured', `mailgun trigger is not configured: set ${cfg.mailgunSigningKeyEnv}`);
    }
    const form = await c.req.parseBody();
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(form)) if (typeof v === 'string') fields[k] = v;
    verifyMailgunSignature(fields, signingKey, {
      nowSeconds: Math.floor(deps.store.now().getTime() / 1000),
      toleranceSeconds: cfg.toleranceSeconds,
    });
    if (!deps.store.useNonce('mailgun-token', fields.token!, cfg.toleranceSeconds * 2)) {
      throw unauthorized('replayed request: this Mailgun token was already used');
    }
    const ev = parseMailgunForm(fields);
    const results = await deps.intake.acceptQueued([ev], await classify(deps, ev));
    deps.onAccepted?.(results);
    return c.json({ source: 'email', ...summarize(results) });
  });

  app.post(
    '/triggers/email/raw',
    credentialAuth({ name: 'raw email trigger', token: deps.config.secrets.get(cfg.rawTokenEnv) }),
    async (c) => {
      const raw = new Uint8Array(await c.req.arrayBuffer());
      const ev = await parseRawEmail(raw);
      const results = await deps.intake.acceptQueued([ev], await classify(deps, ev));
      deps.onAccepted?.(results);
      return c.json({ source: 'email', ...summarize(results) });
    },
  );
}

/** The model classifier's decision (when configured), for intake to use instead of the rules. */
async function classify(deps: AppDeps, ev: TriggerEvent): Promise<AcceptOptions> {
  if (!deps.classifier) return {};
  const c = await deps.classifier(`${ev.title}\n${ev.message}`);
  if (!ev.service && c.service) ev.service = c.service;
  if (!ev.route && c.route) ev.route = c.route;
  return { classifications: new Map([[ev.sourceEventId, c]]) };
}

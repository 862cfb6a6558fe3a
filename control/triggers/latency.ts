/**
 * POST /triggers/latency — P95 latency alerts: a Grafana / Alertmanager webhook
 * (every alert in it is a latency alert) or a small JSON body:
 *   { "service": "api", "route": "GET /api/pets", "p95_ms": 1840, "threshold_ms": 500,
 *     "id"?: "...", "observed_at"?: ISO-8601 }
 * A retry is recognised by its id, else by observed_at, else by its body within five minutes.
 */
import type { Hono } from 'hono';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { AppDeps } from '../app.ts';
import { badRequest } from '../http-error.ts';
import type { TriggerEvent } from '../types.ts';
import { credentialAuth } from './auth.ts';
import { alertParseOptions, parseAlertWebhook } from './alerts.ts';
import { acceptRequest, logRejected, readJson, summarize } from './common.ts';

const DAY_MS = 86_400_000;
const smallSchema = z
  .object({
    service: z.string().trim().min(1),
    route: z.string().trim().min(1),
    // At most a day: a figure past it is a unit mistake, not a measurement.
    p95_ms: z.number().nonnegative().max(DAY_MS),
    threshold_ms: z.number().positive().max(DAY_MS),
    id: z.string().min(1).optional(),
    observed_at: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

/**
 * The measurement's idempotency key: its `id`, else its `observed_at`, else its body
 * within the same five minutes (a sender's retry of it is the same delivery, not a second
 * occurrence; "now" alone made every retry a new event). A hash of those parts, never
 * their text: the key is stored and echoed as it is, unredacted, and a route (or an id)
 * can carry a secret ("GET /reset?token=...").
 */
export const RETRY_WINDOW_MS = 5 * 60_000;
function eventKey(b: z.infer<typeof smallSchema>, at: string, now: Date): string {
  const key = (kind: string, parts: unknown[]) => `latency-${kind}:${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32)}`;
  if (b.id !== undefined) return key('id', [b.service, b.route, b.id]);
  if (b.observed_at) return key('at', [b.service, b.route, at]);
  return key('retry', [b.service, b.route, b.p95_ms, b.threshold_ms, Math.floor(now.getTime() / RETRY_WINDOW_MS)]);
}

export function parseLatencyJson(body: unknown, now: Date): TriggerEvent {
  const r = smallSchema.safeParse(body);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    throw badRequest(`invalid latency alert: ${problems.join('; ')}`, r.error.issues);
  }
  const b = r.data;
  const at = b.observed_at ? new Date(b.observed_at).toISOString() : now.toISOString();
  const msg = `P95 latency ${Math.round(b.p95_ms)} ms on ${b.route} exceeds ${Math.round(b.threshold_ms)} ms`;
  return {
    source: 'latency',
    kind: 'latency',
    service: b.service,
    title: msg,
    message: msg,
    route: b.route,
    labels: { p95_ms: String(b.p95_ms), threshold_ms: String(b.threshold_ms) },
    count: 1,
    firstSeen: at,
    lastSeen: at,
    human: false,
    sourceEventId: eventKey(b, at, now),
    latency: { p95Ms: b.p95_ms, thresholdMs: b.threshold_ms },
  };
}

export function registerLatency(app: Hono, deps: AppDeps): void {
  const cfg = deps.config.triggers.latency;
  if (!cfg.enabled) return;
  const secrets = deps.config.secrets;
  const user = secrets.get(cfg.basicUserEnv);
  const password = secrets.get(cfg.basicPasswordEnv);
  const parse = alertParseOptions(deps.config, deps.store.now, true);

  app.post(
    '/triggers/latency',
    credentialAuth({ name: 'latency trigger', token: secrets.get(cfg.tokenEnv), basic: user && password ? { user, password } : undefined }),
    async (c) => {
      const body = await readJson(c);
      // `version` too: a webhook that lost its `alerts` must be told so, not refused for
      // lacking the small shape's service and route.
      const isAlertWebhook = typeof body === 'object' && body !== null && ('alerts' in body || 'version' in body);
      if (isAlertWebhook) {
        const parsed = parseAlertWebhook(body, parse);
        const results = await acceptRequest(c, deps, parsed.events);
        logRejected(c, deps, parsed.rejected);
        return c.json({ source: parsed.source, ...summarize(results), rejected: parsed.rejected, ...(parsed.ignored.length ? { ignored: parsed.ignored } : {}) });
      }
      const ev = parseLatencyJson(body, deps.store.now());
      if (ev.latency!.p95Ms <= ev.latency!.thresholdMs) {
        // A measurement, not an alert: a sender may post every P95 and let bugbot decide.
        const reason = `P95 ${ev.latency!.p95Ms} ms is within the ${ev.latency!.thresholdMs} ms threshold: nothing to fix, nothing stored`;
        return c.json({ source: 'latency', accepted: 0, duplicates: 0, results: [], rejected: [], ignored: reason });
      }
      const results = await acceptRequest(c, deps, [ev]);
      return c.json({ source: 'latency', ...summarize(results), rejected: [] });
    },
  );
}

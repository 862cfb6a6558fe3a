/**
 * POST /triggers/grafana — Grafana unified-alerting and Prometheus Alertmanager
 * webhooks. Auth: bearer or basic (either configured), plus Grafana's HMAC
 * signature when a secret is configured. Acknowledged only after the commit.
 */
import type { Hono } from 'hono';
import { compilePattern } from '../config.ts';
import type { AppDeps } from '../app.ts';
import { credentialAuth, grafanaHmacAuth } from './auth.ts';
import { parseAlertWebhook } from './alerts.ts';
import { acceptRequest, readJson, summarize } from './common.ts';

export function registerGrafana(app: Hono, deps: AppDeps): void {
  const cfg = deps.config.triggers.grafana;
  if (!cfg.enabled) return;
  const secrets = deps.config.secrets;
  const user = secrets.get(cfg.basicUserEnv);
  const password = secrets.get(cfg.basicPasswordEnv);
  const hmacSecret = secrets.get(cfg.hmacSecretEnv);
  const latencyPattern = compilePattern(deps.config.triggers.latency.alertNamePattern);

  app.post(
    '/triggers/grafana',
    credentialAuth({
      name: 'grafana trigger',
      token: secrets.get(cfg.tokenEnv),
      basic: user && password ? { user, password } : undefined,
    }),
    ...(hmacSecret
      ? [
          grafanaHmacAuth({
            secret: hmacSecret,
            header: cfg.hmacHeader,
            timestampHeader: cfg.timestampHeader,
            toleranceSeconds: cfg.toleranceSeconds,
            store: deps.store,
            now: deps.store.now,
          }),
        ]
      : []),
    async (c) => {
      const body = await readJson(c);
      const parsed = parseAlertWebhook(body, {
        latencyPattern,
        defaultThresholdMs: deps.config.triggers.latency.defaultThresholdMs,
        now: deps.store.now,
      });
      const results = await acceptRequest(c, deps, parsed.events);
      return c.json({ source: parsed.source, ...summarize(results), rejected: parsed.rejected });
    },
  );
}

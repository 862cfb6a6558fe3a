/**
 * POST /triggers/grafana — Grafana unified-alerting and Prometheus Alertmanager
 * webhooks. Auth: bearer or basic (either configured), plus Grafana's HMAC
 * signature when a secret is configured. Acknowledged only after the commit.
 */
import type { Hono } from 'hono';
import type { AppDeps } from '../app.ts';
import { credentialAuth, grafanaHmacAuth } from './auth.ts';
import { alertParseOptions } from './alerts.ts';
import { acceptAlertWebhook, summarize } from './common.ts';

export function registerGrafana(app: Hono, deps: AppDeps): void {
  const cfg = deps.config.triggers.grafana;
  if (!cfg.enabled) return;
  const secrets = deps.config.secrets;
  const user = secrets.get(cfg.basicUserEnv);
  const password = secrets.get(cfg.basicPasswordEnv);
  const hmacSecret = secrets.get(cfg.hmacSecretEnv);
  const parse = alertParseOptions(deps.config, deps.store.now);

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
      const accepted = await acceptAlertWebhook(c, deps, parse);
      // `ignored` only when something was set aside (a test notification): its presence says so.
      return c.json({ source: accepted.source, ...summarize(accepted.results), rejected: accepted.rejected, ...(accepted.ignored?.length ? { ignored: accepted.ignored } : {}) });
    },
  );
}

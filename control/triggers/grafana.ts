/**
 * POST /triggers/grafana — Grafana unified-alerting and Prometheus Alertmanager
 * webhooks. Auth: bearer or basic (either configured), plus Grafana's HMAC
 * signature when a secret is configured. Acknowledged only after the commit. With
 * mcp.loki configured (url or files), the error tickets a webhook creates without a
 * stack get the latest matching log lines after that (enrich.ts says why after).
 */
import type { Hono } from 'hono';
import { createLokiClient } from '../../lib/loki/index.ts';
import type { AppDeps } from '../app.ts';
import { credentialAuth, grafanaHmacAuth } from './auth.ts';
import { alertParseOptions } from './alerts.ts';
import { acceptAlertWebhook, logRejected, summarize } from './common.ts';
import { TicketStackEnricher } from './enrich.ts';

export function registerGrafana(app: Hono, deps: AppDeps): void {
  const cfg = deps.config.triggers.grafana;
  if (!cfg.enabled) return;
  const secrets = deps.config.secrets;
  const user = secrets.get(cfg.basicUserEnv);
  const password = secrets.get(cfg.basicPasswordEnv);
  const hmacSecret = secrets.get(cfg.hmacSecretEnv);
  const parse = alertParseOptions(deps.config, deps.store.now);
  const loki = deps.config.mcp.loki;
  const enricher =
    loki.url || loki.files.length
      ? new TicketStackEnricher({
          store: deps.store,
          // The client redacts the lines by the mcp.loki rules; what is stored goes through intake's too.
          client: createLokiClient(loki, deps.config.secrets),
          redact: (text) => deps.intake.redactText(text),
          logger: deps.logger.child({ component: 'enrich' }),
          shutdown: deps.shutdown,
        })
      : undefined;

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
      // Committed (here or on intake's writer thread): the lookup runs after the reply.
      enricher?.add(accepted.results);
      logRejected(c, deps, accepted.rejected);
      // `ignored` only when something was set aside (a test notification): its presence says so.
      return c.json({ source: accepted.source, ...summarize(accepted.results), rejected: accepted.rejected, ...(accepted.ignored?.length ? { ignored: accepted.ignored } : {}) });
    },
  );
}

/**
 * `createApp(deps)` builds the Hono app without listening, so tests drive it with
 * `app.request()` and main.ts binds it to a port.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { bodyLimit } from 'hono/body-limit';
import { registerApi } from './api.ts';
import { registerDashboard } from './dashboard/index.tsx';
import { errorPage } from './dashboard/errors.tsx';
import { isLoopback, type BugbotConfig } from './config.ts';
import { HttpError } from './http-error.ts';
import type { AcceptResult, Intake } from './intake/index.ts';
import type { Logger } from './log.ts';
import type { Store } from './queue/store.ts';
import { SCHEMA_VERSION } from './queue/migrations.ts';
import { registerEmail } from './triggers/email-routes.ts';
import { registerGrafana } from './triggers/grafana.ts';
import { registerLatency } from './triggers/latency.ts';
import type { SlackTrigger } from './triggers/slack.ts';
import type { Dispatcher } from './dispatcher/pool.ts';
import type { Classifier } from './intake/model-classifier.ts';
import type { OutcomeArchive } from './outcomes/archive.ts';
import type { ApprovalActions } from './types.ts';

/**
 * At most one log line this often for requests refused because the database could not
 * write, and per error code for other refusals of bugbot's (5xx: the writer thread stopped).
 */
const STORAGE_LOG_MS = 10_000;
/** At most one warning per webhook route this often for requests refused for their credentials. */
const REFUSED_LOG_MS = 10 * 60_000;
/**
 * How long a request refused for bugbot's own fault (a full disk, the writer thread gone)
 * keeps /readyz at 503 when nothing has been stored since: no sender may have tried again.
 */
export const READY_WINDOW_MS = 5 * 60_000;
/** What a sender that reads Retry-After is asked to wait before sending again after a 507. */
const STORAGE_RETRY_AFTER_S = 30;

/** Paths whose requests store events: their replies say whether intake takes writes. */
const storesEvents = (method: string, path: string) => method === 'POST' && (path.startsWith('/triggers/') || path === '/api/tickets' || path === '/slack/events');

export interface AppDeps {
  config: BugbotConfig;
  store: Store;
  intake: Intake;
  logger: Logger;
  /** Called after events are committed (wakes the settle scheduler). */
  onAccepted?: (results: AcceptResult[]) => void;
  slack?: SlackTrigger;
  /** Model classifier for free-text reports (triage.classifier "model"); rules otherwise. */
  classifier?: Classifier;
  /** Absent in tests that exercise intake only. */
  dispatcher?: Dispatcher;
  archive?: OutcomeArchive;
  /**
   * This server's local key (server-info.ts). With it set and no API token configured,
   * the API's actions need it as a bearer token, and the dashboard's actions a session
   * opened with it (/login?key=...).
   */
  localKey?: string;
  /** Approve / skip / requeue (approval mode); the approval routes answer 503 without it. */
  approvals?: ApprovalActions;
  /** Aborted when the server stops: long-lived responses (the dashboard's live stream) end. */
  shutdown?: AbortSignal;
  /**
   * Why nothing can be stored any more (the database file was deleted or replaced under
   * the running process: main.ts), or null: /healthz then answers 503 saying so.
   */
  databaseGone?: () => string | null;
}

/**
 * 413 for bodies over the limit, naming the setting that sets it. A declared
 * Content-Length is checked from the header alone; only chunked bodies go through
 * Hono's streaming bodyLimit, because touching `req.raw.body` turns node-server's fast
 * body path into web streams.
 *
 * Bodies are read as sent: one with a content coding (gzip) is refused with 415 and
 * `Accept-Encoding: identity` (RFC 9110 section 15.5.16, RFC 7694), not read as its
 * compressed bytes (a 400 quoting binary, or a mail "with no header fields"), and never
 * inflated (a small body can inflate to gigabytes).
 */
function sizeLimit(maxBytes: number, setting: string): MiddlewareHandler {
  const tooLarge = () => {
    throw new HttpError(413, 'payload_too_large', `body exceeds ${maxBytes} bytes (${setting})`);
  };
  const streaming = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async function sizeLimitMiddleware(c, next) {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') return next();
    const coding = c.req.header('content-encoding');
    if (coding !== undefined && coding.trim().toLowerCase() !== 'identity') {
      c.header('accept-encoding', 'identity');
      throw new HttpError(415, 'unsupported_content_encoding', `content-encoding ${JSON.stringify(coding)} is not accepted: send the body uncompressed`);
    }
    const length = c.req.header('content-length');
    if (length !== undefined && !c.req.header('transfer-encoding')) {
      if (Number(length) > maxBytes) tooLarge();
      return next();
    }
    return streaming(c, next);
  };
}

/**
 * A server bound to loopback answers only requests addressed to loopback (or to a host of
 * dashboard.allowedOrigins, a TLS proxy's). Without it, a web page whose name its owner
 * re-points at 127.0.0.1 (DNS rebinding) would be same-origin with bugbot in the operator's
 * browser and could read the dashboard and the API, which need no login on loopback.
 */
function loopbackHostOnly(allowedOrigins: string[]): MiddlewareHandler {
  const allowed = new Set(['localhost', '127.0.0.1', '[::1]', ...allowedOrigins.map((o) => new URL(o).hostname)]);
  return async function loopbackHostMiddleware(c, next) {
    const host = c.req.header('host') ?? new URL(c.req.url).host;
    const name = (host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!).toLowerCase();
    if (allowed.has(name) || /^127\.\d+\.\d+\.\d+$/.test(name)) return next();
    return c.json(
      { error: { code: 'host_not_allowed', message: `Host ${JSON.stringify(host)} is not this server: bound to loopback, bugbot answers requests to localhost, 127.0.0.1 and [::1] (add a proxy's origin to dashboard.allowedOrigins)` } },
      403,
    );
  };
}

/**
 * A webhook request that brought credentials (a token, a password, a signature): one its
 * sender means to be accepted. Mailgun's signature is in its form; anything posted to its
 * route is taken for Mailgun's.
 */
function presentedCredentials(c: Context, deps: AppDeps): boolean {
  const path = c.req.path;
  if (!path.startsWith('/triggers/')) return false;
  return path === '/triggers/email/mailgun' || Boolean(c.req.header('authorization') || c.req.header(deps.config.triggers.grafana.hmacHeader));
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  const started = Date.now();
  const stopping = () => deps.shutdown?.aborted ?? false;
  // Storage failures come one per request in a storm: logged once per STORAGE_LOG_MS, with a count.
  let storageLog = { at: -Infinity, refused: 0 };
  // Webhook credentials refused, per route: logged at warn once per REFUSED_LOG_MS, with a count.
  const refusedLog = new Map<string, { at: number; refused: number }>();
  // Refusals of bugbot's own (5xx), per code: logged once per STORAGE_LOG_MS, with a count.
  // The writer thread stopping refuses every request it held, and during a crash after
  // crash every one a storm sends; the thread's own line says why.
  const failedLog = new Map<string, { at: number; refused: number }>();
  // The last request that could not be stored for bugbot's own fault, until one is stored
  // again: /healthz tells it, /readyz answers 503 with it (READY_WINDOW_MS).
  let intakeFailing: { at: number; since: number; refused: number; code: string; message: string } | null = null;
  const intakeFailed = (code: string, message: string) => {
    const now = Date.now();
    const recent = intakeFailing && now - intakeFailing.at < READY_WINDOW_MS ? intakeFailing : null;
    intakeFailing = { at: now, since: recent?.since ?? now, refused: (recent?.refused ?? 0) + 1, code, message };
  };
  const intakeState = () => {
    if (!intakeFailing || Date.now() - intakeFailing.at >= READY_WINDOW_MS) return { ok: true as const };
    const { at, since, refused, code, message } = intakeFailing;
    return { ok: false as const, since: new Date(since).toISOString(), lastRefusedAt: new Date(at).toISOString(), refused, error: { code, message } };
  };
  const logFailed = (path: string, err: HttpError) => {
    const seen = failedLog.get(err.code) ?? { at: -Infinity, refused: 0 };
    seen.refused++;
    if (Date.now() - seen.at >= STORAGE_LOG_MS) {
      deps.logger.error('request failed', { path, error: err.message, refused: seen.refused });
      seen.at = Date.now();
      seen.refused = 0;
    }
    failedLog.set(err.code, seen);
  };

  // A browser asking for a dashboard page gets the error as a page (dashboard/errors.tsx);
  // everything else, the API and the webhooks always, the JSON error.
  const fail = (c: Context, status: ContentfulStatusCode, error: { code: string; message: string; details?: unknown }, err?: unknown) =>
    errorPage(c, deps.config, status, error.message, err) ?? c.json({ error }, status);

  app.onError((err, c) => {
    if (err instanceof HttpError) {
      // A route whose credential is not set yet (503 not_configured) is the operator's to-do, not a fault;
      // a request refused because the database file is gone is one of many, logged once (main.ts).
      if (err.code === 'database_gone') deps.logger.debug('request refused: the database file is gone', { path: c.req.path });
      else if (err.status >= 500 && err.code !== 'not_configured') {
        logFailed(c.req.path, err);
        if (storesEvents(c.req.method, c.req.path) && !stopping()) intakeFailed(err.code, err.message);
      }
      else if (err.status >= 500) deps.logger.warn('request refused: not configured', { path: c.req.path, error: err.message });
      else if (err.status === 401 && presentedCredentials(c, deps)) {
        // A webhook that came with credentials, refused: a token rotated on one side only,
        // or a clock minutes off, refuses every alert (Grafana does not resend them); said
        // where the operator looks, now and then. One without any is anyone's probe: debug.
        const seen = refusedLog.get(c.req.path) ?? { at: -Infinity, refused: 0 };
        seen.refused++;
        if (Date.now() - seen.at >= REFUSED_LOG_MS) {
          deps.logger.warn('webhook refused (401) though it brought credentials: if the sender\'s own requests are refused (see error), check its token, password or signing secret against the variables the config names, and this machine\'s clock', { path: c.req.path, error: err.message, refused: seen.refused });
          seen.at = Date.now();
          seen.refused = 0;
        }
        refusedLog.set(c.req.path, seen);
      } else deps.logger.debug('request rejected', { path: c.req.path, status: err.status, error: err.message });
      return fail(c, err.status, { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) }, err);
    }
    const sqlite = (err as { code?: unknown }).code;
    if (typeof sqlite === 'string' && (sqlite === 'SQLITE_FULL' || sqlite.startsWith('SQLITE_IOERR'))) {
      // The transaction rolled back: nothing of this request was stored, so the sender must retry.
      storageLog.refused++;
      if (Date.now() - storageLog.at >= STORAGE_LOG_MS) {
        const disk = sqlite === 'SQLITE_FULL' ? "the disk holding bugbot's home is full" : "the disk holding bugbot's home is failing";
        deps.logger.error(`storage failed: ${disk}; requests refused (507) until it takes writes again`, { path: c.req.path, error: sqlite, refused: storageLog.refused });
        storageLog = { at: Date.now(), refused: 0 };
      }
      const message = `could not store the request (${sqlite}): the disk holding bugbot's home is full or failing; nothing was stored, retry later`;
      if (storesEvents(c.req.method, c.req.path)) intakeFailed('storage_full', message);
      c.header('retry-after', String(STORAGE_RETRY_AFTER_S));
      return fail(c, 507, { code: 'storage_full', message });
    }
    if (sqlite === 'SQLITE_BUSY') {
      c.header('retry-after', '1');
      return fail(c, 503, { code: 'busy', message: 'the database is busy; nothing was stored, retry' });
    }
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' && (err as Error).message === 'aborted') {
      // node:http's error for a request whose connection closed before its body was read
      // (a sender's timeout, a proxy, a slow client cut off at the server's request
      // timeout): the sender's side, with no one left to answer; nothing was stored.
      deps.logger.debug('request aborted by the client before its body was read', { path: c.req.path });
      return fail(c, 400, { code: 'aborted', message: 'the connection closed before the request body was read; nothing was stored' });
    }
    deps.logger.error('unhandled error', { path: c.req.path, error: (err as Error).stack ?? String(err) });
    return fail(c, 500, { code: 'internal', message: 'internal error; see the control plane log' });
  });
  app.notFound((c) => fail(c, 404, { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` }));

  if (isLoopback(deps.config.server.host)) app.use('*', loopbackHostOnly(deps.config.dashboard.allowedOrigins));
  // A mail with a screenshot or an attached mail is far larger than a webhook: the email
  // routes have their own limit (Mailgun's 25 MB message size by default), every other
  // route keeps the global one.
  const globalBodyLimit = sizeLimit(deps.config.server.maxBodyBytes, 'server.maxBodyBytes');
  const emailBodyLimit = sizeLimit(deps.config.triggers.email.maxBodyBytes, 'triggers.email.maxBodyBytes');
  app.use('*', async function routeSizeLimit(c, next) {
    return c.req.path.startsWith('/triggers/email/') ? emailBodyLimit(c, next) : globalBodyLimit(c, next);
  });

  // A request that stored its events clears a failure seen before: intake takes writes again.
  app.use('*', async function intakeRecovered(c, next) {
    await next();
    if (intakeFailing && c.res.status < 300 && storesEvents(c.req.method, c.req.path)) intakeFailing = null;
  });

  // Liveness: the process answers and its database is readable. 503 only when a restart is
  // the cure (the database file gone); a full disk is not, so it is reported, not failed.
  app.get('/healthz', (c) => {
    const uptimeSeconds = Math.round((Date.now() - started) / 1000);
    // The open database still answers, but it is no longer the file bugbot.db: what it takes is lost.
    const gone = deps.databaseGone?.();
    if (gone) return c.json({ ok: false, uptimeSeconds, error: { code: 'database_gone', message: gone } }, 503);
    // A cheap query proves the database is open and readable.
    const counts = deps.store.countByState();
    return c.json({ ok: true, uptimeSeconds, schema: SCHEMA_VERSION, tickets: counts, intake: intakeState() });
  });

  // Readiness: whether events sent now would be stored. 503 while the last request that
  // should have stored some was refused for bugbot's own fault (a full or failing disk,
  // the writer thread stopped) within READY_WINDOW_MS and none was stored since, while the
  // database file is gone, and while the server stops.
  app.get('/readyz', (c) => {
    const gone = deps.databaseGone?.();
    if (gone) return c.json({ ready: false, error: { code: 'database_gone', message: gone } }, 503);
    if (stopping()) return c.json({ ready: false, error: { code: 'unavailable', message: 'bugbot is shutting down' } }, 503);
    const intake = intakeState();
    if (!intake.ok) return c.json({ ready: false, since: intake.since, lastRefusedAt: intake.lastRefusedAt, refused: intake.refused, error: intake.error }, 503);
    return c.json({ ready: true });
  });

  registerGrafana(app, deps);
  registerLatency(app, deps);
  registerEmail(app, deps);
  if (deps.slack) deps.slack.register(app);
  else {
    // Said as the email routes say it: a Slack app pointed here gets the reason, not a 404.
    const slack = deps.config.triggers.slack;
    app.post('/slack/events', () => {
      throw new HttpError(503, 'not_configured', slack.enabled ? `slack trigger is not configured: set ${slack.botTokenEnv} (and ${slack.signingSecretEnv})` : 'slack trigger is off (triggers.slack.enabled is false)');
    });
  }
  registerApi(app, deps);
  registerDashboard(app, deps);
  return app;
}

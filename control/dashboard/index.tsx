/**
 * The dashboard: server-rendered pages (hono/jsx) served by the control plane.
 *
 *   GET  /                      overview: queue by state, workers (live), latest tickets (?state=, ?page=), recent outcomes
 *   GET  /live                  Server-Sent Events: the overview's panels, re-rendered when they change
 *   GET  /tickets/:id           a ticket's timeline, runs, plan, verdict and diff
 *   GET  /outcomes              charts of the outcomes archive; ?source=&service=&from=&to=
 *   GET  /outcomes/export       the same slice as JSONL (application/x-ndjson)
 *   GET  /approvals             fixes awaiting approval and tickets needing a person, with diffs
 *   POST /approvals/:id/:action approve | skip | requeue | cancel
 *   GET  /login, POST /login, POST /logout
 *
 * Access and CSRF rules live in access.ts; see docs/dashboard.md.
 */
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import type { AppDeps } from '../app.ts';
import { isLoopback } from '../config.ts';
import { OutcomeArchive } from '../outcomes/archive.ts';
import { DashboardAccess } from './access.ts';
import { registerAssets } from './assets.ts';
import { localPath, page, PageError, PAGE_CSP, type Dash } from './context.ts';
import { createScrub, OutcomesCache } from './data.ts';
import type { Viewer } from './layout.tsx';
import { LocalKeyPage, LoginPage, SignedInPage } from './pages/login.tsx';
import { registerApprovalRoutes } from './routes/approvals.tsx';
import { registerReadRoutes } from './routes/read.tsx';

/** Paths behind the login; everything else of the app keeps its own rules. */
const GUARDED = ['/', '/live', '/tickets/*', '/outcomes', '/outcomes/*', '/approvals', '/approvals/*', '/logout'];

export function registerDashboard(app: Hono, deps: AppDeps): void {
  const { config } = deps;
  const d = config.dashboard;
  if (!d.enabled) return;
  const basicUser = config.secrets.get(d.basicUserEnv);
  const basicPassword = config.secrets.get(d.basicPasswordEnv);
  const access = new DashboardAccess({
    token: config.secrets.get(d.tokenEnv),
    basic: basicUser && basicPassword ? { user: basicUser, password: basicPassword } : undefined,
    required: d.requireLogin || !isLoopback(config.server.host),
    sessionMs: d.sessionHours * 3_600_000,
    allowedOrigins: d.allowedOrigins,
    localKey: deps.localKey,
  });
  const viewers = new WeakMap<Request, Viewer & { sessionId: string }>();
  const dash: Dash = {
    deps,
    access,
    scrub: createScrub(config),
    maskSecrets: createScrub(config, { secretsOnly: true }),
    outcomes: new OutcomesCache(deps.archive ?? new OutcomeArchive(config.home)),
    viewer: (c: Context) => viewers.get(c.req.raw)!,
  };

  const headers = secureHeaders({
    contentSecurityPolicy: PAGE_CSP,
    referrerPolicy: 'no-referrer',
  });
  const guard = access.guard((c, v) => viewers.set(c.req.raw, v));
  // '/approvals' matches both '/approvals' and '/approvals/*': guard each request once.
  const guardOnce: MiddlewareHandler = async (c, next) => (viewers.has(c.req.raw) ? next() : guard(c, next));
  // What a guarded route answers is one viewer's (tickets, diffs, a CSRF token): never
  // kept by the browser's or a proxy's cache, nor shown again from it after a logout.
  // A route that says otherwise keeps its own (the live stream's no-cache).
  const noStore: MiddlewareHandler = async (c, next) => {
    await next();
    if (!c.res.headers.has('cache-control')) c.res.headers.set('cache-control', 'no-store');
  };
  for (const path of GUARDED) app.use(path, headers, noStore, guardOnce);
  app.use('/login', headers);
  registerAssets(app);

  // ---- login -------------------------------------------------------------------------

  app.get('/login', (c) => {
    if (!access.required) {
      // The link `bugbot start` prints: opens a session that may act. Without a key, the
      // page says where to find it (nobody needs a login just to look); a server without
      // a local key lets every session act, so there is nothing to unlock.
      const key = c.req.query('key');
      const next = localPath(c.req.query('next'));
      if (!key) return deps.localKey ? page(c, <LocalKeyPage next={next} home={config.home} />) : c.redirect(next, 303);
      const actionKey = access.openKeyedSession(c, key);
      if (!actionKey) throw new PageError(401, 'unauthorized', 'wrong local key (it changes with every start of bugbot)', deps.localKey ? 'local-key' : null);
      return signedIn(c, next, actionKey);
    }
    return page(c, <LoginPage next={localPath(c.req.query('next'))} {...access.methods} />);
  });

  app.post('/login', async (c) => {
    if (!access.required) return c.redirect('/', 303);
    const refused = await access.checkOrigin(c);
    if (refused) throw new PageError(403, 'forbidden', refused);
    const form = await c.req.parseBody();
    const str = (k: string) => (typeof form[k] === 'string' ? form[k] : undefined);
    const next = localPath(str('next'));
    const user = access.checkLogin({ token: str('token'), user: str('user'), password: str('password') });
    if (user === 'throttled') return page(c, <LoginPage next={next} {...access.methods} error="Too many failed logins; wait a minute." />, 429);
    if (!user) return page(c, <LoginPage next={next} {...access.methods} error="Those credentials are not right." />, 401);
    const { actionKey } = access.startSession(c, user);
    deps.logger.info('dashboard login', { user });
    return signedIn(c, next, actionKey);
  });

  app.post('/logout', (c) => {
    access.endSession(c);
    return c.redirect(access.required ? '/login' : '/', 303);
  });

  registerReadRoutes(app, dash);
  registerApprovalRoutes(app, dash);
}

/** The page that hands a new session's action key to the browser (never cached). */
function signedIn(c: Context, next: string, actionKey: string) {
  c.header('cache-control', 'no-store');
  return page(c, <SignedInPage next={next} actionKey={actionKey} />);
}

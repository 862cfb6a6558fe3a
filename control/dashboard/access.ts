/**
 * Who may see the dashboard and post its forms.
 *
 * - A login is required when the server is exposed (non-loopback host), when a
 *   credential is configured, or with dashboard.requireLogin. Credentials: a token
 *   or a user/password pair from the environment, via the login form (which sets an
 *   HttpOnly, SameSite=Strict session cookie) or an Authorization header.
 * - Every POST is checked twice against cross-site request forgery: the Origin /
 *   Sec-Fetch-Site check of hono/csrf, and a per-session token in a hidden field
 *   (OWASP's synchronizer token pattern), so a forged form fails even where a
 *   browser sends neither header.
 * - A session's cookie alone cannot act: browsers send cookies to every port of a host,
 *   so a dev server the operator opens on 127.0.0.1 would get it. Each login or keyed
 *   session also has an action key, handed to the page once at sign-in and kept in the
 *   dashboard origin's local storage (which other ports cannot read); every form post
 *   carries it (`_action`, filled by the dashboard's script). Requests that authenticate
 *   themselves (an Authorization header) need no key.
 * Sessions live in memory: a restart logs everyone out.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { csrf } from 'hono/csrf';
import { HTTPException } from 'hono/http-exception';
import { safeEqual } from '../triggers/auth.ts';
import { PageError } from './context.ts';
import type { Viewer } from './layout.tsx';

export const SESSION_COOKIE = 'bugbot_session';
const ID_RE = /^[A-Za-z0-9_-]{43}$/;
/** Failed logins allowed per minute before the form answers 429 (guessing a token is then hopeless). */
const MAX_FAILURES_PER_MINUTE = 20;
const ACTION_KEY_MISSING =
  "this browser does not hold the session's action key (kept in the dashboard's local storage at sign-in; scripts must be on): sign in again";
/** Sessions kept at most (oldest dropped first). */
const MAX_SESSIONS = 10_000;

export interface AccessOptions {
  token?: string | undefined;
  basic?: { user: string; password: string } | undefined;
  /** Ask for a login even with no credential configured (refused at config time) or on loopback. */
  required: boolean;
  sessionMs: number;
  /** Origins besides the request's own that may post forms (a TLS proxy's public origin). */
  allowedOrigins: string[];
  /**
   * Without a login (loopback), actions still need a session opened with the server's
   * local key (/login?key=...): other code on the machine can fetch a page and its CSRF
   * token, but not read the key.
   */
  localKey?: string | undefined;
  now?: () => number;
}

interface Session {
  user: string;
  expires: number;
  /** What a form post must carry besides the cookie (see the file comment). */
  actionKey: string;
}

export class DashboardAccess {
  readonly required: boolean;
  private readonly key = randomBytes(32);
  private readonly sessions = new Map<string, Session>();
  private readonly flashes = new Map<string, { ok: boolean; text: string }>();
  private readonly now: () => number;
  private failures: { minute: number; count: number } = { minute: 0, count: 0 };
  private readonly originCheck: MiddlewareHandler;

  constructor(private readonly opts: AccessOptions) {
    this.required = opts.required || Boolean(opts.token || opts.basic);
    this.now = opts.now ?? Date.now;
    this.originCheck = csrf({
      origin: (origin, c) => origin === new URL(c.req.url).origin || opts.allowedOrigins.includes(origin),
    });
  }

  get methods(): { token: boolean; basic: boolean } {
    return { token: Boolean(this.opts.token), basic: Boolean(this.opts.basic) };
  }

  /** The user a login form names, or null. Counts failures (429 past the limit). */
  checkLogin(form: { token?: string; user?: string; password?: string }): string | null | 'throttled' {
    const minute = Math.floor(this.now() / 60_000);
    if (this.failures.minute !== minute) this.failures = { minute, count: 0 };
    if (this.failures.count >= MAX_FAILURES_PER_MINUTE) return 'throttled';
    const user = this.credentialUser(form);
    if (!user) this.failures.count++;
    return user;
  }

  private credentialUser(form: { token?: string; user?: string; password?: string }): string | null {
    const { token, basic } = this.opts;
    if (token && form.token && safeEqual(form.token, token)) return 'token';
    if (basic && form.user !== undefined && form.password !== undefined) {
      // Both compared, always: no early exit that tells a right user name from a wrong one.
      const userOk = safeEqual(form.user, basic.user);
      const passOk = safeEqual(form.password, basic.password);
      if (userOk && passOk) return basic.user;
    }
    return null;
  }

  /**
   * The user an Authorization header (Bearer token or Basic) names, or null. Failures
   * count against the same per-minute limit as the login form: no guessing at full speed.
   * `countFailure: false` for a request already logged in by its cookie (see resolve).
   */
  headerUser(header: string | undefined, opts: { countFailure?: boolean } = {}): string | null {
    if (!header) return null;
    const minute = Math.floor(this.now() / 60_000);
    if (this.failures.minute !== minute) this.failures = { minute, count: 0 };
    if (this.failures.count >= MAX_FAILURES_PER_MINUTE) return null;
    const user = this.parseHeader(header);
    // A scheme this dashboard takes no credential for (a reverse proxy's own basic auth,
    // forwarded with every request) guesses at nothing: not a failure.
    if (user === undefined) return null;
    if (!user && opts.countFailure !== false) this.failures.count++;
    return user;
  }

  /** The header's user; null for a wrong credential, undefined for a scheme not configured. */
  private parseHeader(header: string): string | null | undefined {
    const i = header.indexOf(' ');
    const scheme = (i === -1 ? header : header.slice(0, i)).toLowerCase();
    const value = i === -1 ? '' : header.slice(i + 1).trim();
    if (scheme === 'bearer' && this.opts.token) return this.credentialUser({ token: value });
    if (scheme === 'basic' && this.opts.basic) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const j = decoded.indexOf(':');
      if (j === -1) return null;
      return this.credentialUser({ user: decoded.slice(0, j), password: decoded.slice(j + 1) });
    }
    return undefined;
  }

  /** A new session (its cookie set on the response); the action key goes to the signed-in page only. */
  startSession(c: Context, user: string): { id: string; actionKey: string } {
    const id = randomBytes(32).toString('base64url');
    const actionKey = randomBytes(32).toString('base64url');
    this.prune();
    this.sessions.set(id, { user, expires: this.now() + this.opts.sessionMs, actionKey });
    this.setSessionCookie(c, id, this.opts.sessionMs);
    return { id, actionKey };
  }

  /** The session of a header credential (no cookie: the header comes with every request). */
  private credentialSession(header: string, user: string): string {
    const id = `h-${createHmac('sha256', this.key).update(`credential:${header}`).digest('base64url')}`;
    const s = this.sessions.get(id);
    if (!s || s.expires <= this.now()) {
      this.prune();
      this.sessions.set(id, { user, expires: this.now() + this.opts.sessionMs, actionKey: randomBytes(32).toString('base64url') });
    }
    return id;
  }

  endSession(c: Context): void {
    const id = getCookie(c, SESSION_COOKIE);
    if (id) {
      this.sessions.delete(id);
      this.flashes.delete(id);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
  }

  /** Session id and user of a request, or null when it is not logged in. */
  private resolve(c: Context): { id: string; user: string; byHeader?: boolean } | null {
    const id = getCookie(c, SESSION_COOKIE);
    if (this.required) {
      // A request that authenticates itself (a script's bearer token, a browser's basic
      // auth) is that credential's viewer, whatever cookie it also sends: one server-side
      // session per credential, so the CSRF token of the page a script read still holds
      // for the form it posts with the same header.
      // A header that names nobody falls back to the cookie's session. With a live one it
      // is no guess either: a proxy in front (nginx forwards its basic auth by default)
      // sends it with every page a logged-in person views, and counting those would lock
      // everyone out of the login form. (Who is logged in already gains nothing by guessing.)
      const s = id ? this.sessions.get(id) : undefined;
      const live = Boolean(id && s && s.expires > this.now());
      const header = c.req.header('authorization');
      const user = header ? this.headerUser(header, { countFailure: !live }) : null;
      if (user) return { id: this.credentialSession(header!, user), user, byHeader: true };
      if (live) return { id: id!, user: s!.user };
      return null;
    }
    // No login on loopback: every browser still gets a session id for its CSRF token.
    if (id && ID_RE.test(id)) return { id, user: 'local' };
    const fresh = randomBytes(32).toString('base64url');
    this.setSessionCookie(c, fresh, 365 * 86_400_000);
    return { id: fresh, user: 'local' };
  }

  /** A session opened with the local key (see AccessOptions.localKey); its action key, or null for a wrong key. */
  openKeyedSession(c: Context, key: string): string | null {
    if (!this.opts.localKey || !safeEqual(key, this.opts.localKey)) return null;
    return this.startSession(c, 'local').actionKey;
  }

  /** May this session act (post forms)? Always with a login; without, only once keyed. */
  mayAct(sessionId: string): boolean {
    if (this.required || !this.opts.localKey) return true;
    const s = this.sessions.get(sessionId);
    return Boolean(s && s.expires > this.now());
  }

  /** False once a login session was ended or ran out (always true without logins). */
  sessionAlive(sessionId: string): boolean {
    if (!this.required) return true;
    const s = this.sessions.get(sessionId);
    return Boolean(s && s.expires > this.now());
  }

  csrfToken(sessionId: string): string {
    return createHmac('sha256', this.key).update(`csrf:${sessionId}`).digest('base64url');
  }

  flash(sessionId: string, ok: boolean, text: string): void {
    if (this.flashes.size > 10_000) this.flashes.clear();
    this.flashes.set(sessionId, { ok, text });
  }

  /**
   * The guard for every dashboard route except the login page and assets: resolves
   * the viewer, turns away strangers (a redirect to the login form for a browser
   * asking for a page, 401 otherwise) and checks both CSRF defences on a POST.
   */
  guard(onViewer: (c: Context, v: Viewer & { sessionId: string }) => void): MiddlewareHandler {
    return async (c, next) => {
      const who = this.resolve(c);
      if (!who) {
        const wantsPage = c.req.method === 'GET' && (c.req.header('accept') ?? '').includes('text/html');
        if (wantsPage) {
          const nextPath = c.req.path + (new URL(c.req.url).search || '');
          return c.redirect(`/login?next=${encodeURIComponent(nextPath)}`, 303);
        }
        c.header('WWW-Authenticate', this.opts.basic ? 'Basic realm="bugbot dashboard"' : 'Bearer realm="bugbot dashboard"');
        throw new PageError(401, 'unauthorized', 'dashboard: log in first (/login), or send a bearer token or basic auth', 'login');
      }
      const token = this.csrfToken(who.id);
      if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
        if (!this.mayAct(who.id)) {
          throw new PageError(403, 'forbidden', 'actions on this dashboard need the local key: open the /login?key=... link `bugbot start` printed', 'local-key');
        }
        // A stored session (a login, or keyed) acts only with its action key, unless the
        // request authenticated itself with a header.
        // Logging out needs no key: a stranger ending a session costs nothing.
        const actionKey = who.byHeader || c.req.path === '/logout' ? null : (this.sessions.get(who.id)?.actionKey ?? null);
        const refusal = (await this.checkOrigin(c)) ?? (await this.checkToken(c, token));
        if (refusal) throw new PageError(403, 'forbidden', refusal);
        if (actionKey !== null && !(await this.hasActionKey(c, actionKey))) {
          // A login signs in again at the form; an open dashboard's session, with the key link.
          throw new PageError(403, 'forbidden', ACTION_KEY_MISSING, this.required ? 'login' : 'local-key');
        }
      }
      const flash = this.flashes.get(who.id);
      if (flash && c.req.method === 'GET') this.flashes.delete(who.id);
      onViewer(c, { user: who.user, csrf: token, loggedIn: this.required, mayAct: this.mayAct(who.id), flash, sessionId: who.id });
      return next();
    };
  }

  /** hono/csrf's Origin / Sec-Fetch-Site check; a message when it refuses. */
  async checkOrigin(c: Context): Promise<string | null> {
    try {
      await this.originCheck(c, async () => {});
      return null;
    } catch (err) {
      if (err instanceof HTTPException && err.status === 403) return 'cross-site form post refused (Origin does not match the dashboard)';
      throw err;
    }
  }

  private async checkToken(c: Context, expected: string): Promise<string | null> {
    const type = c.req.header('content-type') ?? '';
    if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(type)) return 'dashboard actions are form posts carrying a CSRF token';
    const body = await c.req.parseBody();
    const got = typeof body._csrf === 'string' ? body._csrf : '';
    if (!got || !safeEqual(got, expected)) return 'missing or wrong CSRF token: reload the page and try again';
    return null;
  }

  /** Whether a form post (its CSRF token already checked) carries the session's action key. */
  private async hasActionKey(c: Context, actionKey: string): Promise<boolean> {
    const body = await c.req.parseBody();
    const key = typeof body._action === 'string' ? body._action : '';
    return Boolean(key) && safeEqual(key, actionKey);
  }

  private setSessionCookie(c: Context, id: string, maxAgeMs: number): void {
    const https = new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
    setCookie(c, SESSION_COOKIE, id, {
      path: '/',
      httpOnly: true,
      sameSite: 'Strict',
      secure: https,
      maxAge: Math.floor(maxAgeMs / 1000),
    });
  }

  private prune(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (s.expires <= now) this.sessions.delete(id);
    // Scripts authenticating per request without a cookie jar start a session each time:
    // keep the newest, drop the oldest (Map order is insertion order).
    for (const id of this.sessions.keys()) {
      if (this.sessions.size < MAX_SESSIONS) break;
      this.sessions.delete(id);
      this.flashes.delete(id);
    }
  }
}

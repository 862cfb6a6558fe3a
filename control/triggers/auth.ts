/**
 * Webhook authenticity checks as configured middleware factories. Each runs before
 * the body is parsed; a failure is a 401 and nothing is stored.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { unauthorized } from '../http-error.ts';
import type { Store } from '../queue/store.ts';
import type { Nonce } from '../intake/index.ts';

/** Constant-time string comparison (length leak only). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** Hex HMAC-SHA256 of the parts, one after another. */
export function hmacHex(key: string, ...parts: Array<string | Uint8Array>): string {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export interface CredentialAuth {
  /** Accepted bearer token, if configured. */
  token?: string;
  /** Accepted basic-auth pair, if configured. */
  basic?: { user: string; password: string };
  /** With no credential configured: admit requests (only allowed on a loopback bind). */
  name: string;
}

/** Bearer token or basic auth; either configured method admits the request. */
export function credentialAuth(opts: CredentialAuth): MiddlewareHandler {
  return async function credentialAuthMiddleware(c, next) {
    if (!opts.token && !opts.basic) return next();
    const header = c.req.header('authorization') ?? '';
    const [scheme, value = ''] = splitOnce(header, ' ');
    if (opts.token && scheme.toLowerCase() === 'bearer' && safeEqual(value.trim(), opts.token)) return next();
    if (opts.basic && scheme.toLowerCase() === 'basic') {
      const decoded = Buffer.from(value.trim(), 'base64').toString('utf8');
      const [user, password = ''] = splitOnce(decoded, ':');
      // Both compared every time: a wrong user name takes as long as a wrong password.
      const userOk = safeEqual(user, opts.basic.user);
      const passwordOk = safeEqual(password, opts.basic.password);
      if (userOk && passwordOk) return next();
    }
    const wanted = [opts.token ? 'a bearer token' : '', opts.basic ? 'basic auth' : ''].filter(Boolean).join(' or ');
    throw unauthorized(header ? `${opts.name}: credentials rejected` : `${opts.name}: missing Authorization header (${wanted} required)`);
  };
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i === -1 ? [s, undefined] : [s.slice(0, i), s.slice(i + sep.length)];
}

const requestNonces = new WeakMap<Request, Nonce>();

/** The one-time value an auth middleware checked for this request, if any. */
export function requestNonce(c: Context): Nonce | undefined {
  return requestNonces.get(c.req.raw);
}

export interface GrafanaHmacOptions {
  secret: string;
  header: string;
  timestampHeader: string;
  toleranceSeconds: number;
  store: Store;
  now: () => Date;
}

/**
 * Grafana's webhook HMAC: hex HMAC-SHA256 of `timestamp:body` when the contact point
 * sets a timestamp header, else of the body. We require the timestamp (replay
 * window) and remember accepted signatures for the window (replay within it).
 */
export function grafanaHmacAuth(opts: GrafanaHmacOptions): MiddlewareHandler {
  return async function grafanaHmacMiddleware(c: Context, next) {
    const sig = c.req.header(opts.header);
    const ts = c.req.header(opts.timestampHeader);
    if (!sig) throw unauthorized(`missing ${opts.header} header`);
    if (!ts) throw unauthorized(`missing ${opts.timestampHeader} header (configure a timestamp header on the contact point)`);
    const tsNum = Number(ts);
    if (!Number.isFinite(tsNum)) throw unauthorized(`${opts.timestampHeader} is not a Unix timestamp`);
    const tsMs = tsNum > 1e12 ? tsNum : tsNum * 1000;
    const skew = Math.abs(opts.now().getTime() - tsMs) / 1000;
    if (skew > opts.toleranceSeconds) {
      throw unauthorized(`stale signature: timestamp is ${Math.round(skew)} s from now (window ${opts.toleranceSeconds} s)`);
    }
    // Grafana signs the bytes it sends (grafana/alerting http/hmac.go). The body read as
    // text is not always those bytes: decoding drops a byte-order mark and replaces what
    // is not UTF-8, which a contact point's custom payload template may write.
    const body = new Uint8Array(await c.req.arrayBuffer());
    const expected = hmacHex(opts.secret, `${ts}:`, body);
    if (!safeEqual(sig.trim().toLowerCase().replace(/^sha256=/, ''), expected)) {
      throw unauthorized(`${opts.header} does not match the body`);
    }
    const nonce = { scope: 'grafana-signature', value: expected, keepSeconds: opts.toleranceSeconds * 2 };
    if (opts.store.nonceUsed(nonce.scope, nonce.value, nonce.keepSeconds)) {
      throw unauthorized('replayed request: this signature was already used');
    }
    // Used up by the commit that stores the request's events (acceptWithNonce).
    requestNonces.set(c.req.raw, nonce);
    return next();
  };
}

/**
 * Errors as a browser sees them. The app's one error handler and its not-found handler
 * (app.ts) ask here first: a request for a dashboard page from a browser (its Accept
 * names text/html) gets a page in the dashboard's layout, with the same status; the API,
 * the webhooks and every client that does not ask for HTML keep the JSON error, byte for
 * byte, which scripts and the CLI parse.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { BugbotConfig } from '../config.ts';
import { notFound } from '../http-error.ts';
import { localPath, page, PageError, PAGE_CSP } from './context.ts';
import type { Viewer } from './layout.tsx';
import { ErrorPage } from './pages/error.tsx';
import { LocalKeyHelp } from './pages/login.tsx';

/** Paths that are machine interfaces, whatever the client's Accept says. */
const MACHINE_PATHS = /^\/(api|triggers|slack|healthz|readyz)(\/|$)/;

/** True when this request should get an error page rather than JSON. */
export function wantsErrorPage(c: Context, config: BugbotConfig): boolean {
  // The same test the login redirect makes (access.ts): browsers name text/html, fetch and curl send */*.
  return config.dashboard.enabled && !MACHINE_PATHS.test(c.req.path) && (c.req.header('accept') ?? '').includes('text/html');
}

const cspHeader = Object.entries(PAGE_CSP)
  .map(([k, v]) => `${k.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`)} ${v.join(' ')}`)
  .join('; ');

/**
 * The error page for `err` (a PageError's help included), or null when the request
 * should get JSON. Pages no dashboard route serves (a mistyped path) get the
 * dashboard's headers here: the CSP, and no caching.
 */
export function errorPage(c: Context, config: BugbotConfig, status: ContentfulStatusCode, message: string, err?: unknown): Promise<Response> | null {
  if (!wantsErrorPage(c, config)) return null;
  const help = err instanceof PageError ? err.help : null;
  c.header('content-security-policy', cspHeader);
  c.header('cache-control', 'no-store');
  return page(
    c,
    <ErrorPage
      status={status}
      message={message}
      help={
        help === 'local-key' ? (
          <LocalKeyHelp next={localPath(c.req.query('next'))} home={config.home} />
        ) : help === 'login' ? (
          <p>
            <a href="/login">Log in again</a>
          </p>
        ) : null
      }
    />,
    status,
  );
}

/**
 * A dashboard route's own 404 (no such ticket, no such action): a page in the viewer's
 * layout (its flash, its logout button) for a browser, the JSON error for every other
 * client, as the app's handlers answer.
 */
export function notFoundPage(c: Context, config: BugbotConfig, viewer: Viewer, message: string) {
  if (!wantsErrorPage(c, config)) throw notFound(message);
  return page(c, <ErrorPage viewer={viewer} status={404} message={message} />, 404);
}

/** A ticket id as the dashboard's paths write it (`/tickets/12`), or null: `0x0c`, `1e1` or `12.0` name no ticket. */
export function ticketIdParam(raw: string | undefined): number | null {
  return raw !== undefined && /^[1-9]\d{0,15}$/.test(raw) && Number.isSafeInteger(Number(raw)) ? Number(raw) : null;
}

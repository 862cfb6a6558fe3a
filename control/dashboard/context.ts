/**
 * What every dashboard route shares: the dependencies, the access rules, the
 * scrubbers, the outcomes cache, the viewer of a request, and rendering helpers.
 */
import type { Context } from 'hono';
import type { JSX } from 'hono/jsx/jsx-runtime';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppDeps } from '../app.ts';
import { HttpError } from '../http-error.ts';
import type { OutcomeRow } from '../outcomes/archive.ts';
import type { DashboardAccess } from './access.ts';
import type { OutcomesCache, Scrub } from './data.ts';
import type { Viewer } from './layout.tsx';

export interface Dash {
  deps: AppDeps;
  access: DashboardAccess;
  /** For everything shown that came from an agent, a log or a file. */
  scrub: Scrub;
  /** Secret values only: for data handed out verbatim (the export). */
  maskSecrets: Scrub;
  outcomes: OutcomesCache;
  /** Who is asking (set by the guard for every guarded route). */
  viewer(c: Context): Viewer & { sessionId: string };
}

export async function render(el: JSX.Element): Promise<string> {
  return (await el).toString();
}

export async function page(c: Context, el: JSX.Element, status: ContentfulStatusCode = 200) {
  return c.html(`<!DOCTYPE html>${await render(el)}`, status);
}

/** What a page tells a person about an error besides its message (see PageError). */
export type ErrorHelp = 'local-key' | 'login';

/**
 * A dashboard refusal. A browser gets it as a page (dashboard/errors.tsx) that adds
 * `help`, what to do about it; every other client gets the JSON error every route
 * answers with, code and message as before.
 */
export class PageError extends HttpError {
  readonly help: ErrorHelp | null;

  constructor(status: HttpError['status'], code: string, message: string, help: ErrorHelp | null = null) {
    super(status, code, message);
    this.help = help;
  }
}

/** The pages' Content-Security-Policy: the dashboard's own script and stylesheet, no framing, forms posting only here. */
export const PAGE_CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
};

/** Newest first. */
export const byFinished = (rows: OutcomeRow[]) => [...rows].sort((a, b) => (b.finished ?? '').localeCompare(a.finished ?? ''));

/**
 * A path on this site, then printable ASCII only: Node refuses a Location header holding a
 * control character (a 500 after the form's action was done), and a browser may read a
 * space or a backslash as the start of another host.
 */
const LOCAL_PATH = /^\/(?![/\\])[\x21-\x7e]{0,1998}$/;

/**
 * A local path to come back to; anything else (another site, //host, a control
 * character) becomes the fallback. Non-ASCII characters (/☃) are percent-encoded as a
 * browser sends them, then checked like the rest.
 */
export function localPath(v: unknown, fallback = '/'): string {
  if (typeof v !== 'string' || v.length >= 2000) return fallback;
  let encoded: string;
  try {
    encoded = v.replace(/[\u0080-\uffff]+/g, (s) => encodeURIComponent(s));
  } catch {
    return fallback; // a lone surrogate (URIError)
  }
  return LOCAL_PATH.test(encoded) ? encoded : fallback;
}

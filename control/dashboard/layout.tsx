/**
 * The page frame (navigation, who is logged in, flash message) and the small
 * formatting components every page uses. Text children are escaped by hono/jsx.
 */
import type { Child } from 'hono/jsx';
import { CSS_PATH, JS_PATH } from './assets.ts';

/** Who is looking: set by the access middleware for every dashboard request. */
export interface Viewer {
  user: string;
  /** The CSRF token every form posts back (hidden field `_csrf`). */
  csrf: string;
  /** False on loopback without a configured credential: no logout button then. */
  loggedIn: boolean;
  /** False on an open loopback dashboard until the local key was presented (/login?key=...). */
  mayAct: boolean;
  flash?: { ok: boolean; text: string } | undefined;
}

const NAV: Array<[string, string]> = [
  ['/', 'Overview'],
  ['/approvals', 'Approvals'],
  ['/outcomes', 'Outcomes'],
];

/**
 * The HTML document every page shares, with the dashboard's one script (live updates, and
 * the session's action key added to every form post; see access.ts).
 */
export function Document(props: { title: string; live?: string | undefined; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · bugbot`}</title>
        <link rel="stylesheet" href={CSS_PATH} />
        <link rel="icon" href="data:," />
        <script src={JS_PATH} defer></script>
      </head>
      <body data-live={props.live}>{props.children}</body>
    </html>
  );
}

/** `viewer` is absent on an error page the app's own handlers render (a path no route has). */
export function Layout(props: { title: string; here: string; viewer?: Viewer | undefined; live?: string; children?: Child }) {
  const { viewer } = props;
  return (
    <Document title={props.title} live={props.live}>
      <header class="top">
        <span class="brand">bugbot</span>
        {NAV.map(([href, label]) => (
          <a href={href} class={href === props.here ? 'here' : undefined}>
            {label}
          </a>
        ))}
        <span class="who">
          {props.live ? (
            <span class="small">
              <span id="live-dot" class="live-dot"></span>live
            </span>
          ) : null}
          {viewer?.loggedIn ? (
            <>
              <span class="small">{viewer.user}</span>
              <form method="post" action="/logout">
                <CsrfField viewer={viewer} />
                <button type="submit">Log out</button>
              </form>
            </>
          ) : null}
        </span>
      </header>
      <main>
        {viewer?.flash ? <div class={`flash ${viewer.flash.ok ? 'ok' : 'err'}`} role="status">{viewer.flash.text}</div> : null}
        {props.children}
      </main>
    </Document>
  );
}

/** The CSRF token, and the field the script fills with the session's action key when the form is sent. */
export function CsrfField(props: { viewer: Viewer }) {
  return (
    <>
      <input type="hidden" name="_csrf" value={props.viewer.csrf} />
      <input type="hidden" name="_action" value="" />
    </>
  );
}

export function StateBadge(props: { state: string }) {
  return <span class={`state state-${props.state}`}>{props.state.replace(/_/g, ' ')}</span>;
}

export function OutcomeBadge(props: { outcome: string }) {
  return <span class={`state o-${props.outcome}`}>{props.outcome}</span>;
}

export function Time(props: { iso: string | null | undefined }) {
  if (!props.iso) return <span class="muted">—</span>;
  return <time datetime={props.iso}>{fmtTime(props.iso)}</time>;
}

export function TicketLink(props: { id: number; title?: string | undefined }) {
  return (
    <a href={`/tickets/${props.id}`}>
      #{props.id}
      {props.title ? ` ${props.title}` : ''}
    </a>
  );
}

export function fmtTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}

export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function fmtCost(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || !Number.isFinite(usd)) return '—';
  return `$${usd.toFixed(usd !== 0 && Math.abs(usd) < 1 ? 4 : 2)}`;
}

export function fmtInt(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return Math.round(n).toLocaleString('en-US');
}

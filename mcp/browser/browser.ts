/**
 * One Chromium per server process: launched lazily on the first tool call that needs
 * a page, with a fresh user-data-dir, headless, off the network, every request checked
 * against the origin allowlist twice (the route guard here, the proxy in
 * guard-proxy.ts for what routing cannot see), and closed with the server.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { stripVTControlCharacters } from 'node:util';
import { join } from 'node:path';
import type { BrowserContext, Page, Route } from 'playwright-core';
import type { BrowserSettings } from '../../lib/mcp/browser-settings.ts';
import { ToolError } from '../shared/tool.ts';
import { clip, ConsoleBuffer } from './console-log.ts';
import { GUARD_PROXY_HOST, startGuardProxy } from './guard-proxy.ts';
import type { OriginPolicy } from './origins.ts';

/** Hosts the guard proxy's refusals are logged for, at most, in a session's log. */
const MAX_LOGGED_REFUSED_HOSTS = 200;

const CHROMIUM_ARGS = [
  // Chromium's own sandbox is on but for root (chromiumSandboxArgs below).
  // Without these Chromium calls Google (updates, sync, field trials) on start.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // QUIC is UDP and would not go through the guard proxy.
  '--disable-quic',
  // Nor would WebRTC: a page's RTCPeerConnection sends STUN over UDP to any host (and
  // resolves a STUN server's name over DNS, a channel of its own). Only proxied traffic.
  '--webrtc-ip-handling-policy=disable_non_proxied_udp',
  // No DNS lookups at all: a TURN server over TCP (`turn:<data>.example.com?transport=tcp`)
  // is proxied, but Chromium resolves its name first, and the query itself carries data
  // out. Every name fails here; only the guard proxy's address (GUARD_PROXY_HOST, an IP
  // literal that the rules would otherwise fail too) is left alone. Pages still load: the
  // proxy resolves the dev server's name, Chromium only ever connects to the proxy.
  `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${GUARD_PROXY_HOST}`,
  '--disable-gpu',
];

/**
 * `--no-sandbox` for root, where Chromium refuses to start with its sandbox, and once
 * its sandbox has failed to start in this process (`sandboxFailed`); none otherwise:
 * Chromium's sandbox confines its renderers, which run the pages under test. It needs
 * unprivileged user namespaces (or a setuid helper), which some systems restrict
 * (Ubuntu 24.04's AppArmor, `kernel.unprivileged_userns_clone=0`).
 */
export function chromiumSandboxArgs(uid: number | undefined, sandboxFailed: boolean): string[] {
  return uid === 0 || sandboxFailed ? ['--no-sandbox'] : [];
}

/**
 * Set once a Chromium launched with its sandbox failed for the sandbox's sake (its stderr
 * names the sandbox, user namespaces, setuid or the zygote: `sandboxRefused`) and one
 * without it started: later launches in this process skip the attempt (and the warning,
 * which is logged once). Any other failure (a timeout, a crash) leaves it unset.
 */
let sandboxFailed = false;

/**
 * The only variables Chromium inherits: a home, a locale, fonts and (for headless: false)
 * a display; never the server's secrets.
 */
const INHERITED_ENV = /^(PATH|HOME|LANG|LANGUAGE|TZ|TMPDIR|DISPLAY|WAYLAND_DISPLAY|XAUTHORITY|LC_\w+|XDG_\w+|FONTCONFIG_\w+)$/;

/** What every browser tool handler gets. */
export interface BrowserToolContext {
  session: BrowserSession;
  settings: BrowserSettings;
  policy: OriginPolicy;
  /** Resolves an environment variable the settings name (a seeded user's password). */
  secret: (name: string) => string | undefined;
}

interface Live {
  context: BrowserContext;
  page: Page;
  /** Removes the profile and stops the proxy (once Chromium is gone). Idempotent. */
  dispose: () => Promise<void>;
}

/** The browser, its one page and what the page logged. */
export class BrowserSession {
  readonly console: ConsoleBuffer;
  private live?: Promise<Live>;
  /** The launched browser, for questions that must not launch it. */
  private current?: Live;
  /** The page being opened in place of a closed one: calls side by side share it. */
  private opening?: Promise<Page>;
  private closing?: Promise<void>;

  constructor(
    private readonly settings: BrowserSettings,
    private readonly policy: OriginPolicy,
    private readonly log: (msg: string) => void,
    /** The server's environment; Chromium gets only the INHERITED_ENV part of it. */
    private readonly env: NodeJS.ProcessEnv = {},
    /**
     * Masks the seeded users' secrets (server.ts). Whatever cuts page text (the console
     * buffer, errorText, describePage) masks first: a cut through a secret leaves a prefix
     * that no longer matches the mask.
     */
    readonly mask: (text: string) => string = (t) => t,
    /** Whose process this is (root gets `--no-sandbox`); for tests. */
    private readonly uid: number | undefined = process.getuid?.(),
  ) {
    this.console = new ConsoleBuffer(settings.maxConsoleEntries, mask);
  }

  /** The one page, launching Chromium on first use (and again after it died). */
  async page(): Promise<Page> {
    if (this.closing) throw new ToolError('The browser is shutting down.');
    // Each tool call starts afresh: a refusal it names is one its own action met.
    this.blockedNavigation = undefined;
    if (!this.live) {
      const launching = this.launch();
      this.live = launching;
      // A failed launch is retried by the next call instead of failing forever.
      launching.catch(() => {
        if (this.live === launching) this.live = undefined;
      });
    }
    const live = await this.live;
    this.current = live;
    if (live.page.isClosed()) {
      // Read-only tools may be called side by side: two new pages would leave one undriven.
      this.opening ??= live.context
        .newPage()
        .then((page) => (live.page = this.watch(page)))
        .finally(() => (this.opening = undefined));
      await this.opening;
    }
    return live.page;
  }

  /**
   * After a tool failed: a page whose script loops (`for (;;) {}` after its load event)
   * answers nothing, and every later call would wait on it. One that does not evaluate
   * `1` within 2 s is closed (the next call opens a fresh page); returns what to tell the
   * model then.
   */
  async recoverIfHung(): Promise<string | undefined> {
    const page = this.current?.page;
    if (!page || page.isClosed()) return undefined;
    const answered = await Promise.race([page.evaluate('1').then(() => true, () => true), sleep(PAGE_ANSWER_MS).then(() => false)]);
    if (answered) return undefined;
    const url = pageText(page.url(), this.mask);
    this.log(`the page at ${url} stopped answering; closing it`);
    this.console.push('pageerror', 'error', `the page at ${url} stopped answering (a script on it may be looping) and was closed`);
    await Promise.race([page.close({ runBeforeUnload: false }).catch(() => undefined), sleep(5_000)]);
    return 'The page stopped answering (a script on it may be looping), so it was closed: the next browser tool call opens a fresh page.';
  }

  /** Where the page is, or undefined while Chromium is not running (never launches it). */
  currentUrl(): string | undefined {
    const page = this.current?.page;
    return page && !page.isClosed() ? page.url() : undefined;
  }

  /** Closes Chromium (if it ever started) and waits until it has exited. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const live = await this.live?.catch(() => undefined);
      if (!live) return;
      // Resolves once Chromium's processes have exited (its 'close' event comes earlier).
      await live.context.close().catch((err: unknown) => this.log(`closing chromium: ${String(err)}`));
      await live.dispose();
    })();
    return this.closing;
  }

  private async launch(): Promise<Live> {
    const { chromiumPath } = this.settings;
    if (!existsSync(chromiumPath)) {
      throw new ToolError(
        `Chromium is not installed at ${chromiumPath}: install Debian's chromium (apt-get install chromium, or scripts/install-test-deps.sh) or set mcp.browser.chromiumPath.`,
      );
    }
    const userDataDir = mkdtempSync(join(tmpdir(), 'bugbot-browser-'));
    // Chromium itself calls update.googleapis.com and accounts.google.com every few seconds
    // despite the flags; those refusals go to stderr (once per host), not to the page's log.
    // What the page did is reported from Playwright's events (redirect hops, WebSockets).
    // Hosts are the page's to make up (a WebSocket to a new name each time): the log names
    // the first MAX_LOGGED_REFUSED_HOSTS, then says it stops. A URL may carry a seeded
    // user's password (a refused redirect of a login): masked as tool results are.
    const refusedHosts = new Set<string>();
    const proxy = await startGuardProxy(this.policy, (what, host) => {
      if (refusedHosts.has(host) || refusedHosts.size > MAX_LOGGED_REFUSED_HOSTS) return;
      refusedHosts.add(host);
      this.log(
        refusedHosts.size > MAX_LOGGED_REFUSED_HOSTS
          ? `guard proxy refused requests to ${MAX_LOGGED_REFUSED_HOSTS} hosts; refusals for further hosts are not logged`
          : `guard proxy refused ${clip(this.mask(what), MAX_PAGE_TEXT)} (later refusals for ${clip(this.mask(host), MAX_PAGE_TEXT)} are not logged)`,
      );
    });
    let context: BrowserContext;
    try {
      // Loaded on first launch, not at server start: the session waits for this server to connect.
      const { chromium } = await import('playwright-core');
      const launch = (noSandbox: boolean) =>
        chromium.launchPersistentContext(userDataDir, {
          executablePath: chromiumPath,
          headless: this.settings.headless,
          // '<-loopback>' removes Chromium's implicit proxy bypass for 127.0.0.1 and localhost,
          // which is exactly where other workers' dev servers and the control plane listen.
          args: [...chromiumSandboxArgs(this.uid, noSandbox), ...CHROMIUM_ARGS, `--proxy-server=${proxy.url}`, '--proxy-bypass-list=<-loopback>'],
          // Playwright adds --no-sandbox itself unless told otherwise: the choice is ours.
          chromiumSandbox: chromiumSandboxArgs(this.uid, noSandbox).length === 0,
          viewport: this.settings.viewport,
          env: {
            ...Object.fromEntries(Object.entries(this.env).filter(([k]) => INHERITED_ENV.test(k))),
            // Crashpad's database would otherwise land in ~/.config/chromium, outside the fresh profile.
            BREAKPAD_DUMP_LOCATION: join(userDataDir, 'Crash Reports'),
          },
          // A service worker's fetches would bypass the route guard.
          serviceWorkers: 'block',
          acceptDownloads: false,
          // serve() orders shutdown (close Chromium, then exit); Playwright must not race it.
          handleSIGINT: false,
          handleSIGTERM: false,
          handleSIGHUP: false,
          timeout: 30_000,
        });
      const sandboxed = chromiumSandboxArgs(this.uid, sandboxFailed).length === 0;
      try {
        context = await launch(!sandboxed);
      } catch (err) {
        // Only a failure of the sandbox itself turns it off: a timeout on a loaded machine
        // or a crash is reported as it is, and the next launch tries the sandbox again.
        if (!sandboxed || !sandboxRefused((err as Error).message, [chromiumPath, userDataDir])) throw err;
        // Its sandbox could not start (no unprivileged user namespaces): the browser tools
        // still work without it, which the operator is told, once. A fresh profile: the
        // failed Chromium may have left its lock there.
        rmSync(userDataDir, { recursive: true, force: true });
        mkdirSync(userDataDir, { mode: 0o700 });
        context = await launch(true);
        if (!sandboxFailed) {
          sandboxFailed = true;
          this.log(
            `warning: Chromium's sandbox could not start, so Chromium runs with --no-sandbox (its renderers unconfined; ` +
              `the worker's own sandbox is the boundary). Chromium's sandbox needs unprivileged user namespaces ` +
              `(Ubuntu 24.04 restricts them with AppArmor: allow them for ${chromiumPath}, see docs/mcp.md). ` +
              `The launch with the sandbox: ${launchFailure((err as Error).message)}`,
          );
        }
      }
    } catch (err) {
      await proxy.close();
      rmSync(userDataDir, { recursive: true, force: true });
      throw new Error(`Chromium at ${chromiumPath} did not start: ${(err as Error).message}`);
    }
    let disposing: Promise<void> | undefined;
    const dispose = () =>
      (disposing ??= Promise.all([
        rm(userDataDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 }).catch((err: unknown) =>
          this.log(`removing ${userDataDir}: ${(err as Error).message}`),
        ),
        proxy.close(),
      ]).then(() => undefined));
    context.once('close', () => {
      this.log('chromium exited');
      if (this.current?.context === context) this.current = undefined;
      if (this.closing) return;
      // Chromium died on its own: the next call relaunches. 'close' fires while its
      // processes may still be writing the profile, hence the retries above.
      this.live = undefined;
      void dispose();
    });
    context.setDefaultNavigationTimeout(this.settings.navigationTimeoutMs);
    context.setDefaultTimeout(this.settings.actionTimeoutMs);
    await context.route('**/*', (route) => this.guard(route));
    context.on('request', (req) => {
      // Redirect hops skip the route guard (microsoft/playwright#33882); the proxy refuses them.
      const from = req.redirectedFrom();
      if (from && !this.policy.allows(req.url())) {
        if (req.isNavigationRequest() && req.resourceType() === 'document') this.blockedNavigation = req.url();
        this.blocked(`${req.method()} ${req.url()} (${req.resourceType()}, redirected from ${from.url()}; refused by the guard proxy)`);
      }
    });
    context.on('requestfailed', (req) => {
      const why = req.failure()?.errorText ?? 'failed';
      // Requests the guard aborted (net::ERR_BLOCKED_BY_CLIENT.Inspector) are already reported as 'blocked'.
      if (!why.startsWith('net::ERR_BLOCKED_BY_CLIENT')) this.console.push('requestfailed', 'error', `${req.method()} ${req.url()}: ${why}`);
    });
    context.on('response', (res) => {
      // Off-origin URLs here are the proxy's refusals, already reported as 'blocked'.
      if (res.status() >= 400 && this.policy.allows(res.url())) {
        this.console.push('http', 'error', `${res.status()} ${res.request().method()} ${res.url()}`);
      }
    });
    const live: Live = { context, page: this.watch(context.pages()[0] ?? (await context.newPage())), dispose };
    // One page: any other is closed as it opens. Per context, not per page: a popup's own
    // popup may arrive after its opener was closed, when no 'popup' event is emitted for it.
    context.on('page', (page) => void this.closeUndriven(live, page));
    const sandbox = chromiumSandboxArgs(this.uid, sandboxFailed).length ? 'off' : 'on';
    this.log(`chromium started: user-data-dir=${userDataDir} guard-proxy=${proxy.url} sandbox=${sandbox}`);
    return live;
  }

  /** Closes, saying so, any page but the driven one: window.open, target=_blank, a popup's popup. */
  private async closeUndriven(live: Live, page: Page): Promise<void> {
    // The 'page' event of a page opened by page() comes before its newPage() resolves.
    if (page === live.page || page === (await this.opening?.catch(() => undefined))) return;
    this.console.push('popup', 'warning', `closed a new window opened for ${page.url()}: this server drives one page; use browser_navigate`);
    await page.close().catch(() => undefined);
  }

  /** Records what the page says. */
  private watch(page: Page): Page {
    page.on('console', (msg) => {
      const { url, lineNumber } = msg.location();
      this.console.push('console', msg.type(), url ? `${msg.text()} (${url}:${lineNumber + 1})` : msg.text());
    });
    page.on('websocket', (ws) => {
      if (!this.policy.allows(ws.url())) this.blocked(`WebSocket ${ws.url()} (refused by the guard proxy)`);
    });
    page.on('pageerror', (err) => this.console.push('pageerror', 'error', err.stack ?? err.message));
    // Without a listener Playwright dismisses dialogs silently; an alert() often is the bug report.
    // A beforeunload prompt ("leave with unsaved changes?") is accepted: dismissed, it keeps
    // the page, and every later navigation and login failed with net::ERR_ABORTED.
    page.on('dialog', (dialog) => {
      const leave = dialog.type() === 'beforeunload';
      this.console.push('dialog', dialog.type(), `${dialog.type()}: ${dialog.message()} (${leave ? 'accepted: the page was left' : 'dismissed'})`);
      void (leave ? dialog.accept() : dialog.dismiss()).catch(() => undefined);
    });
    // Downloads are refused (acceptDownloads: false), but the event still comes: a click
    // that started one would otherwise seem to have done nothing.
    page.on('download', (download) => {
      this.console.push('download', 'warning', `refused a download of ${download.url()} (${download.suggestedFilename()}): this browser saves no files`);
    });
    page.on('crash', () => {
      this.console.push('pageerror', 'error', 'the page crashed; the next tool call opens a fresh page');
      void page.close().catch(() => undefined);
    });
    return page;
  }

  private async guard(route: Route): Promise<void> {
    const req = route.request();
    try {
      if (this.policy.allows(req.url())) return await route.continue();
      const kind = req.isNavigationRequest() ? `${req.resourceType()} navigation` : req.resourceType();
      if (req.isNavigationRequest() && req.resourceType() === 'document') this.blockedNavigation = req.url();
      this.blocked(`${req.method()} ${req.url()} (${kind})`);
      await route.abort('blockedbyclient');
    } catch (err) {
      // The page went away while the request was paused; nothing left to decide.
      this.log(`route guard: ${(err as Error).message}`);
    }
  }

  /** The last page load the guard refused: Chromium shows its error page under chrome-error://, not the URL. */
  blockedNavigation: string | undefined;

  private blocked(what: string): void {
    this.console.push('blocked', 'error', `${what}: outside the dev server; ${this.policy.describe()}`);
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: host === '[::1]' ? '::1' : host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Before opening a page on loopback: wait (up to `waitMs`) until something listens
 * there. The worker's dev server starts while the first session does, so the first
 * page may be asked for before it is up. Other hosts are not waited for.
 */
export async function waitForListener(target: URL, waitMs: number): Promise<void> {
  if (!LOOPBACK.has(target.hostname)) return;
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const deadline = Date.now() + waitMs;
  while (!(await accepts(target.hostname, port))) {
    if (Date.now() >= deadline) {
      throw new ToolError(
        `Nothing listens on ${target.origin} after ${Math.round(waitMs / 1000)} s: the dev server did not start (the harness's devserver.log says why).`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A failed launch's message as lines: Playwright's first line, then the rest. */
function launchLines(message: string): string[] {
  return stripVTControlCharacters(message)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** What Chromium said on stderr during a failed launch (the `[pid=N][err]` lines of Playwright's message). */
function chromiumSaid(lines: string[]): string[] {
  return lines.flatMap((l) => /\[pid=\d+\]\[err\] (.*)/.exec(l)?.[1] ?? []);
}

/**
 * Words of Chromium's sandbox failing to start: "No usable sandbox!" (user namespaces
 * refused, from zygote_host_impl_linux.cc), "Failed to move to new namespace", "The SUID
 * sandbox helper binary ...", "setuid sandbox".
 */
const SANDBOX_WORDS = /sandbox|namespace|setuid|suid|zygote/i;

/**
 * Whether a failed launch was the sandbox's: Playwright's first line or Chromium's stderr
 * says so. The rest of the message (the command line Playwright logs) is not read, nor are
 * the given paths (the executable's, the profile's), whose names may contain those words.
 */
function sandboxRefused(message: string, paths: string[]): boolean {
  const lines = launchLines(message);
  const told = [lines[0] ?? '', ...chromiumSaid(lines)].map((l) => paths.reduce((t, p) => t.split(p).join(' '), l));
  return told.some((l) => SANDBOX_WORDS.test(l));
}

/** A failed launch in a line: Playwright's first line and what Chromium said on stderr (its call log). */
function launchFailure(message: string): string {
  const lines = launchLines(message);
  const said = chromiumSaid(lines);
  const why = said.find((l) => SANDBOX_WORDS.test(l) || /FATAL/.test(l)) ?? said[0];
  return `${lines[0] ?? ''}${why ? `; Chromium said: ${why}` : ''}`.slice(0, 500);
}

/** A Playwright error's message without its call log, masked (`mask`), then cut short enough for a tool result. */

export function errorText(err: unknown, mask: (text: string) => string): string {
  const msg = err instanceof Error ? err.message : String(err);
  // Playwright's messages carry its call log and terminal colours: neither helps the model.
  return clip(mask(stripVTControlCharacters(msg.split('\nCall log:')[0]!).trim()), 800);
}

/**
 * The most of a page's URL or title a tool result shows: both are the page's to choose
 * (`document.title = 'T'.repeat(3e6)` made a 3 MB answer).
 */
const MAX_PAGE_TEXT = 300;

/** A URL or title the page chose, masked (`mask`) and then cut to MAX_PAGE_TEXT. */
export function pageText(text: string, mask: (text: string) => string): string {
  return clip(mask(text), MAX_PAGE_TEXT);
}

/**
 * After an action: if the page ended on another origin (the guard proxy refused a
 * redirect and Chromium shows that refusal under the foreign URL), go back to
 * about:blank and return the foreign URL so the tool can say what was blocked.
 */
export async function leaveForeignPage(page: Page, policy: OriginPolicy, blockedNavigation: string | undefined, mask: (text: string) => string): Promise<string | undefined> {
  const landed = page.url();
  if (landed === 'about:blank' || policy.allows(landed)) return undefined;
  await page.goto('about:blank').catch(() => undefined);
  // Refused by the route guard, the page shows Chromium's error page: name what was refused.
  return pageText(landed.startsWith('chrome-error://') && blockedNavigation ? blockedNavigation : landed, mask);
}

/** How long a page may take to answer a question about itself (its title, `1`) before it counts as hung. */
const PAGE_ANSWER_MS = 2_000;

/**
 * `http://127.0.0.1:4101/plans — "Plans"`: where the page is now, for tool results. A
 * page too busy to say its title throws (the tool's caller then closes it: recoverIfHung).
 */
export async function describePage(page: Page, mask: (text: string) => string): Promise<string> {
  const title = await Promise.race([page.title().catch(() => ''), sleep(PAGE_ANSWER_MS).then(() => undefined)]);
  const url = pageText(page.url(), mask);
  if (title === undefined) throw new ToolError(`The page at ${url} does not answer (not even with its title).`);
  return `${url} — "${pageText(title, mask)}"`;
}

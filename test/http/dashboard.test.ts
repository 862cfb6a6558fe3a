/**
 * The dashboard's access rules and pieces without a browser: who gets in (exposed,
 * requireLogin, token, basic auth, the login form and its limits), the CSRF checks,
 * the live stream and its end at shutdown, the config refusals, and the diff parser.
 * The browser side is test/e2e/dashboard.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createApp } from '../../control/app.ts';
import { loadConfig, type ConfigError, type ConfigFile } from '../../control/config.ts';
import { phaseTail } from '../../control/dashboard/data.ts';
import { localPath } from '../../control/dashboard/context.ts';
import { DiffView, UNNAMED } from '../../control/dashboard/diff-view.tsx';
import { ApprovalsPage } from '../../control/dashboard/pages/approvals.tsx';
import { parseUnifiedDiff, runDiff, sideBySide } from '../../control/dashboard/git-diff.ts';
import { parseFilter } from '../../control/dashboard/outcome-stats.ts';
import { Approvals } from '../../control/dispatcher/approvals.ts';
import { Intake } from '../../control/intake/index.ts';
import { OutcomeArchive } from '../../control/outcomes/archive.ts';
import { silentLogger } from '../../control/log.ts';
import { claimNext, finishRun } from '../../control/queue/leases.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor, redactLines } from '../../lib/redact.ts';
import { createGitTarget, finishAwaiting, sneakBehindMovedBase } from '../support/approval.ts';
import { buildTestApp, cookieOf, csrfOf, tempDir, testConfig } from '../support/helpers.ts';

const EXPOSED: ConfigFile = {
  server: { host: '0.0.0.0' },
  triggers: { grafana: { enabled: false }, latency: { enabled: false }, email: { enabled: false } },
};
const EXPOSED_ENV = { BUGBOT_API_TOKEN: 'api-token-123', BUGBOT_DASHBOARD_TOKEN: 'dash-token-456' };

function fileTicket(intake: Intake, title: string): number {
  const at = new Date().toISOString();
  const [r] = intake.accept([{ source: 'manual', kind: 'error', title, message: 'it broke', labels: {}, count: 1, firstSeen: at, lastSeen: at, human: true, sourceEventId: `dash-${title}` }]);
  return r!.ticketId!;
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
/** The signed-in page a login answers with: where it goes on, and the session's action key for the dashboard's script. */
async function signedInOf(res: Response): Promise<{ next: string; actionKey: string }> {
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const html = await res.text();
  const m = /id="signed-in" data-action-key="([^"]+)" data-next="([^"]*)"/.exec(html);
  assert.ok(m, html);
  return { actionKey: m[1]!, next: m[2]!.replace(/&amp;/g, '&') };
}

test('an exposed dashboard: pages redirect to the login, everything else is 401, a bearer token or the form lets in', async (t) => {
  const { app } = buildTestApp(t, { flags: EXPOSED, env: EXPOSED_ENV });
  const page = await app.request('/outcomes?source=slack', { headers: { accept: 'text/html' } });
  assert.equal(page.status, 303);
  assert.equal(page.headers.get('location'), '/login?next=%2Foutcomes%3Fsource%3Dslack');
  for (const path of ['/', '/tickets/1', '/approvals', '/live', '/outcomes/export']) {
    const r = await app.request(path);
    assert.equal(r.status, 401, path);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
  }
  assert.equal((await app.request('/approvals/1/cancel', { method: 'POST' })).status, 401);
  assert.equal((await app.request('/', { headers: { authorization: 'Bearer wrong' } })).status, 401);
  assert.equal((await app.request('/', { headers: { authorization: 'Bearer dash-token-456' } })).status, 200);
  // The API keeps its own token: the dashboard's does not open it.
  assert.equal((await app.request('/api/tickets', { headers: { authorization: 'Bearer dash-token-456' } })).status, 401);

  const loginPage = await app.request('/login?next=/approvals');
  assert.equal(loginPage.status, 200);
  assert.match(await loginPage.text(), /name="token"/);
  const headers = { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' };
  const bad = await app.request('http://localhost/login', { method: 'POST', headers, body: form({ token: 'nope', next: '/approvals' }) });
  assert.equal(bad.status, 401);
  assert.equal(cookieOf(bad), undefined);
  const good = await app.request('http://localhost/login', { method: 'POST', headers, body: form({ token: 'dash-token-456', next: '/approvals' }) });
  assert.match(good.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/);
  assert.equal((await signedInOf(good)).next, '/approvals');
  const ok = await app.request('/approvals', { headers: { cookie: `bugbot_session=${cookieOf(good)}` } });
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  assert.doesNotMatch(await ok.text(), /dash-token-456|api-token-123/, 'no secret is rendered');

  // Somewhere else after the login: refused, the user lands on the overview.
  const away = await app.request('http://localhost/login', { method: 'POST', headers, body: form({ token: 'dash-token-456', next: '//evil.example/x' }) });
  assert.equal((await signedInOf(away)).next, '/');
  // A login form posted from another site.
  const forged = await app.request('http://localhost/login', { method: 'POST', headers: { ...headers, origin: 'http://evil.example' }, body: form({ token: 'dash-token-456' }) });
  assert.equal(forged.status, 403);
});

test('basic auth from the environment, and guessing (form or header) stops after 20 failures a minute', async (t) => {
  const { app } = buildTestApp(t, {
    flags: { dashboard: { requireLogin: true, basicUserEnv: 'DASH_USER', basicPasswordEnv: 'DASH_PASS' } },
    env: { DASH_USER: 'ops', DASH_PASS: 'pa:ss-789', BUGBOT_DASHBOARD_TOKEN: '' },
  });
  const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
  assert.equal((await app.request('/', { headers: basic('ops', 'pa:ss-789') })).status, 200);
  assert.equal((await app.request('/', { headers: basic('ops', 'wrong') })).status, 401);
  assert.match((await app.request('/')).headers.get('www-authenticate') ?? '', /^Basic realm=/);
  const headers = { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' };
  const login = (password: string) => app.request('http://localhost/login', { method: 'POST', headers, body: form({ user: 'ops', password }) });
  assert.equal((await login('pa:ss-789')).status, 200);
  // The wrong Basic header above counted too: 19 more failures reach the limit of 20.
  for (let i = 0; i < 19; i++) assert.equal((await login(`guess-${i}`)).status, 401);
  assert.equal((await login('pa:ss-789')).status, 429, 'locked for the rest of the minute, right password or not');
  assert.equal((await app.request('/', { headers: basic('ops', 'pa:ss-789') })).status, 401, 'and so is the Authorization header');
});

test('on loopback without a login: a session for the CSRF token; posts need it and the same origin', async (t) => {
  const { app, intake, store } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } } });
  const id = fileTicket(intake, 'Broken basket');
  const first = await app.request('http://localhost/', { headers: { accept: 'text/html' } });
  assert.equal(first.status, 200);
  const session = cookieOf(first)!;
  const html = await first.text();
  assert.doesNotMatch(html, /Log out/, 'nobody to log out');
  const csrf = csrfOf(await (await app.request(`http://localhost/tickets/${id}`, { headers: { cookie: `bugbot_session=${session}` } })).text())!;
  assert.ok(csrf);
  const post = (body: Record<string, string>, headers: Record<string, string> = {}) =>
    app.request(`http://localhost/approvals/${id}/cancel`, {
      method: 'POST',
      headers: { cookie: `bugbot_session=${session}`, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: form(body),
    });
  assert.equal((await post({})).status, 403, 'no token');
  assert.equal((await post({ _csrf: csrf.slice(0, -2) + 'xx' })).status, 403, 'wrong token');
  assert.equal((await post({ _csrf: csrf }, { origin: 'http://evil.example' })).status, 403, 'another origin');
  assert.equal((await post({ _csrf: csrf }, { cookie: 'bugbot_session=' + 'a'.repeat(43) })).status, 403, "another session's token");
  assert.equal(store.getTicket(id)!.state, 'queued');
  const ok = await post({ _csrf: csrf, return_to: `/tickets/${id}` });
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.get('location'), `/tickets/${id}`);
  assert.equal(store.getTicket(id)!.state, 'dropped');
  const after = await (await app.request(`http://localhost/tickets/${id}`, { headers: { cookie: `bugbot_session=${session}` } })).text();
  assert.match(after, /ticket #\d+ cancelled \(was queued, now dropped\)/, 'the result is shown once');
  // Approve needs the approvals backend, which this app was not given.
  const approve = await app.request(`http://localhost/approvals/${id}/approve`, {
    method: 'POST',
    headers: { cookie: `bugbot_session=${session}`, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ _csrf: csrf }),
  });
  assert.equal(approve.status, 303);
  assert.match(await (await app.request('http://localhost/approvals', { headers: { cookie: `bugbot_session=${session}` } })).text(), /approve: approvals are not available/);
});

test('Approve carries the run whose fix the page showed: once the ticket has a newer fix, that click merges nothing', async (t) => {
  const home = tempDir(t);
  const config = testConfig(home, { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' } });
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const approvals = new Approvals({ config, store, logger: silentLogger, archive: new OutcomeArchive(home) });
  const app = createApp({ config, store, intake, logger: silentLogger, approvals });
  const id = fileTicket(intake, 'Stale approval');
  const { run } = finishAwaiting({ store, config, ticketId: id });
  const first = await app.request('http://localhost/approvals', { headers: { accept: 'text/html' } });
  const session = cookieOf(first)!;
  const html = await first.text();
  assert.match(html, new RegExp(`<input type="hidden" name="run" value="${run.id}"/?>`), 'the form names the run shown');
  // The form a person kept open while the ticket got another run's fix.
  const res = await app.request(`http://localhost/approvals/${id}/approve`, {
    method: 'POST',
    headers: { cookie: `bugbot_session=${session}`, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ _csrf: csrfOf(html)!, run: String(run.id + 1) }),
  });
  assert.equal(res.status, 303);
  assert.equal(store.getTicket(id)!.state, 'awaiting_approval', 'nothing merged');
  const after = await (await app.request('http://localhost/approvals', { headers: { cookie: `bugbot_session=${session}` } })).text();
  // (A run the ticket never had: said to be so; an earlier run's fix is the other refusal, approvals.test.ts.)
  assert.match(after.replaceAll('&#39;', "'"), new RegExp(`ticket ${id} has no run ${run.id + 1} \\(the fix waiting for approval is run ${run.id}'s\\)`));
});

test("with the server's local key (bugbot start): pages stay open on loopback, actions need a session opened with the key, the API's actions the key itself", async (t) => {
  const key = 'local-key-0123456789abcdefghij';
  const { app, intake, store } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } }, localKey: key });
  const id = fileTicket(intake, 'Broken basket');
  const first = await app.request('http://localhost/', { headers: { accept: 'text/html' } });
  assert.equal(first.status, 200, 'pages need no login on loopback');
  const browsing = cookieOf(first)!;
  const page = await (await app.request(`http://localhost/tickets/${id}`, { headers: { cookie: `bugbot_session=${browsing}` } })).text();
  assert.match(page, /<button[^>]*disabled[^>]*title="open the \/login\?key=/, 'action buttons say how to unlock them');
  const post = (session: string, csrf: string, actionKey = '') =>
    app.request(`http://localhost/approvals/${id}/cancel`, {
      method: 'POST',
      headers: { cookie: `bugbot_session=${session}`, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ _csrf: csrf, _action: actionKey }),
    });
  // Code on the same machine can fetch a page and its CSRF token, but not act.
  const refused = await post(browsing, csrfOf(page)!);
  assert.equal(refused.status, 403);
  assert.match(await refused.text(), /need the local key/);
  assert.equal((await app.request('http://localhost/login?key=wrong')).status, 401);
  assert.equal(store.getTicket(id)!.state, 'queued');

  const login = await app.request(`http://localhost/login?key=${key}&next=/tickets/${id}`);
  const keyed = cookieOf(login)!;
  const { next, actionKey } = await signedInOf(login);
  assert.equal(next, `/tickets/${id}`);
  const unlocked = await (await app.request(`http://localhost/tickets/${id}`, { headers: { cookie: `bugbot_session=${keyed}` } })).text();
  assert.doesNotMatch(unlocked, /title="open the \/login\?key=/);
  assert.ok(!unlocked.includes(actionKey), 'no page but the signed-in one holds the action key');
  // Browsers send the cookie to every port of 127.0.0.1: a dev server the operator opens
  // gets it, can fetch a page and its CSRF token, and still cannot act without the key
  // that only the dashboard origin's local storage holds.
  const stolen = await post(keyed, csrfOf(unlocked)!);
  assert.equal(stolen.status, 403);
  assert.match(await stolen.text(), /action key/);
  assert.equal((await post(keyed, csrfOf(unlocked)!, 'x'.repeat(43))).status, 403, 'a wrong key');
  assert.equal(store.getTicket(id)!.state, 'queued');
  assert.equal((await post(keyed, csrfOf(unlocked)!, actionKey)).status, 303);
  assert.equal(store.getTicket(id)!.state, 'dropped');

  // The JSON API: reads open on loopback, actions only with the key as a bearer token.
  const id2 = fileTicket(intake, 'Broken checkout');
  assert.equal((await app.request('/api/tickets')).status, 200);
  const noKey = await app.request(`/api/tickets/${id2}/cancel`, { method: 'POST' });
  assert.equal(noKey.status, 401);
  assert.match(await noKey.text(), /local key/);
  assert.equal((await app.request(`/api/tickets/${id2}/cancel`, { method: 'POST', headers: { authorization: 'Bearer nope' } })).status, 401);
  assert.equal((await app.request(`/api/tickets/${id2}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${key}` } })).status, 200);
  assert.equal(store.getTicket(id2)!.state, 'dropped');
});

test('the live stream sends the panels, and ends when the server shuts down', async (t: TestContext) => {
  const home = tempDir(t);
  const config = testConfig(home, { dashboard: { liveIntervalMs: 100 } });
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const shutdown = new AbortController();
  const app = createApp({ config, store, intake: new Intake({ store, config, redactor: createRedactor({ salt: 's' }) }), logger: silentLogger, shutdown: shutdown.signal });
  const res = await app.request('/live');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  while (!/live-outcomes/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  assert.match(text, /event: part\ndata: \{"id":"live-workers","html":"<p class=\\"muted\\" data-workers=\\"0\\">No worker is running/);
  shutdown.abort();
  const deadline = Date.now() + 3000;
  for (;;) {
    const { done } = await reader.read();
    if (done) break;
    assert.ok(Date.now() < deadline, 'the stream ends after shutdown');
  }
});

test('a logged-in live stream ends when its session does (logout)', async (t) => {
  const { app } = buildTestApp(t, { flags: { ...EXPOSED, dashboard: { liveIntervalMs: 100 } }, env: EXPOSED_ENV });
  const headers = { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' };
  const login = await app.request('http://localhost/login', { method: 'POST', headers, body: form({ token: 'dash-token-456' }) });
  const cookie = `bugbot_session=${cookieOf(login)}`;
  const live = await app.request('http://localhost/live', { headers: { cookie } });
  assert.equal(live.status, 200);
  const reader = live.body!.getReader();
  assert.match(new TextDecoder().decode((await reader.read()).value), /event: hello/);
  const csrf = csrfOf(await (await app.request('http://localhost/', { headers: { cookie } })).text())!;
  const out = await app.request('http://localhost/logout', { method: 'POST', headers: { ...headers, cookie }, body: form({ _csrf: csrf }) });
  assert.equal(out.status, 303);
  assert.equal(out.headers.get('location'), '/login');
  const deadline = Date.now() + 3000;
  for (;;) {
    const { done } = await reader.read();
    if (done) break;
    assert.ok(Date.now() < deadline, 'the stream ends after logout');
  }
  assert.equal((await app.request('http://localhost/', { headers: { cookie } })).status, 401, 'the old cookie no longer works');
});

test('config: an open dashboard is refused with what to set', (t) => {
  const problems = (flags: ConfigFile, env: NodeJS.ProcessEnv) => {
    try {
      loadConfig({ cwd: tempDir(t), env, flags });
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  const exposed = problems(EXPOSED, { BUGBOT_API_TOKEN: 'x' });
  assert.ok(exposed.some((p) => /server\.host is 0\.0\.0\.0 \(not loopback\): the dashboard needs a login: set BUGBOT_DASHBOARD_TOKEN/.test(p)), exposed.join('\n'));
  assert.deepEqual(problems(EXPOSED, EXPOSED_ENV), []);
  assert.deepEqual(problems({ ...EXPOSED, dashboard: { enabled: false } }, { BUGBOT_API_TOKEN: 'x' }), [], 'or no dashboard at all');
  assert.match(problems({ dashboard: { requireLogin: true } }, {}).join('\n'), /dashboard\.requireLogin is true: the dashboard needs a login/);
  assert.match(problems({ dashboard: { basicUserEnv: 'U' } }, { U: 'x' }).join('\n'), /basicUserEnv and basicPasswordEnv must be set together/);
  assert.match(problems({ dashboard: { basicUserEnv: 'U', basicPasswordEnv: 'P' } }, { U: 'x' }).join('\n'), /dashboard\.basicPasswordEnv names P, which is not set/);
  assert.deepEqual(problems({}, {}), [], 'loopback without a credential is fine');
});

test('the diff parser: modified, added, renamed and binary files; side-by-side rows pair replacements', () => {
  const files = parseUnifiedDiff(
    [
      'diff --git a/src/pets.ts b/src/pets.ts',
      'index 1111111..2222222 100644',
      '--- a/src/pets.ts',
      '+++ b/src/pets.ts',
      '@@ -12,4 +12,5 @@ export function getPet',
      '   const pet = store.pets.get(id);',
      '-  return pet.owner!.name;',
      '-  // old',
      '+  return pet.owner?.name ?? null;',
      '+  // new',
      '+  // more',
      '   }',
      'diff --git a/docs/new.md b/docs/new.md',
      'new file mode 100644',
      '--- /dev/null',
      '+++ b/docs/new.md',
      '@@ -0,0 +1 @@',
      '+# New',
      '\\ No newline at end of file',
      'diff --git a/a.txt b/b.txt',
      'similarity index 100%',
      'rename from a.txt',
      'rename to b.txt',
      'diff --git a/logo.png b/logo.png',
      'Binary files a/logo.png and b/logo.png differ',
      '',
    ].join('\n'),
  );
  assert.deepEqual(
    files.map((f) => [f.oldPath, f.newPath, f.status, f.binary, f.additions, f.deletions]),
    [
      ['src/pets.ts', 'src/pets.ts', 'modified', false, 3, 2],
      ['docs/new.md', 'docs/new.md', 'added', false, 1, 0],
      ['a.txt', 'b.txt', 'renamed', false, 0, 0],
      ['logo.png', 'logo.png', 'modified', true, 0, 0],
    ],
  );
  const rows = sideBySide(files[0]!.hunks[0]!);
  assert.deepEqual(
    rows.map((r) => [r.left?.old ?? null, r.left?.text ?? null, r.right?.new ?? null, r.right?.text ?? null]),
    [
      [12, '  const pet = store.pets.get(id);', 12, '  const pet = store.pets.get(id);'],
      [13, '  return pet.owner!.name;', 13, '  return pet.owner?.name ?? null;'],
      [14, '  // old', 14, '  // new'],
      [null, null, 15, '  // more'],
      [15, '  }', 16, '  }'],
    ],
  );
});

test('outcome filters: dates must be dates, and from before to', () => {
  assert.deepEqual(parseFilter({ source: 'slack', service: ' billing ', from: '2026-11-01', to: '2026-11-20' }), {
    filter: { source: 'slack', service: 'billing', from: '2026-11-01', to: '2026-11-20' },
    problems: [],
  });
  assert.deepEqual(parseFilter({ from: 'yesterday' }).problems, ['from must be a date like 2026-11-21, not "yesterday"']);
  assert.deepEqual(parseFilter({ from: '2026-11-20', to: '2026-11-01' }).problems, ['from is after to']);
});

test('bound to loopback, bugbot answers only requests addressed to loopback (DNS rebinding), and a proxy host in dashboard.allowedOrigins', async (t) => {
  const { app } = buildTestApp(t, { flags: { dashboard: { allowedOrigins: ['https://bugbot.example.com'] } } });
  for (const path of ['/', '/api/tickets', '/healthz']) {
    const res = await app.request(path, { headers: { host: 'rebound.example:7777', accept: 'text/html' } });
    assert.equal(res.status, 403, path);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /is not this server: bound to loopback/);
  }
  for (const host of ['localhost:7777', '127.0.0.1:7777', '127.0.0.2', '[::1]:7777', 'LOCALHOST', 'bugbot.example.com']) {
    assert.equal((await app.request('/healthz', { headers: { host } })).status, 200, host);
  }
  const exposed = buildTestApp(t, { flags: EXPOSED, env: EXPOSED_ENV }).app;
  assert.equal((await exposed.request('/healthz', { headers: { host: 'bugbot.internal:7777' } })).status, 200, 'an exposed server has its logins instead');
});

test('what the dashboard shows of a run is scrubbed before it is cut: a secret cut in half stays hidden', (t) => {
  const dir = tempDir(t);
  const token = `ghp_${'a1B2c3D4e5'.repeat(4)}`;
  const log = join(dir, 'stage-implement.jsonl');
  const command = `${'x'.repeat(206)} --token ${token} && echo done`;
  writeFileSync(log, JSON.stringify({ type: 'assistant', message: { content: [{ type: 'tool_use', name: 'Bash', input: { command } }] } }) + '\n');
  const tail = phaseTail(log, 8, createRedactor().text);
  assert.equal(tail.length, 1);
  assert.doesNotMatch(tail[0]!, /ghp_a1B2/, tail[0]);
  assert.ok(tail[0]!.length <= 240);
});

test('a diff\'s hunk headers and file names are scrubbed like its lines', async () => {
  const files = parseUnifiedDiff(
    [
      'diff --git a/src/config.ts b/src/config.ts',
      '--- a/src/config.ts',
      '+++ b/src/config.ts',
      '@@ -5,3 +5,3 @@ API_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"',
      ' a',
      '-b',
      '+c',
      '',
    ].join('\n'),
  );
  const scrub = createRedactor().text;
  const html = String(await DiffView({ diff: { base: 'main', ref: 'bot/1', files, truncated: false }, scrub, mask: scrub }));
  assert.match(html, /@@ -5,3 \+5,3 @@ API_TOKEN = &quot;\[REDACTED\]&quot;/);
  assert.doesNotMatch(html, /ghp_abcdefghij/);
  // A name holding a token: in the heading and in the element's attribute alike.
  const named = parseUnifiedDiff(
    ['diff --git a/notes-ghp_abcdefghijklmnopqrstuvwxyz0123456789.txt b/notes-ghp_abcdefghijklmnopqrstuvwxyz0123456789.txt', 'new file mode 100644', '--- /dev/null', '+++ b/notes-ghp_abcdefghijklmnopqrstuvwxyz0123456789.txt', '@@ -0,0 +1 @@', '+x', ''].join('\n'),
  );
  const page = String(await DiffView({ diff: { base: 'main', ref: 'bot/1', files: named, truncated: false }, scrub, mask: scrub }));
  assert.match(page, /data-path="notes-\[REDACTED:github-token\]\.txt"/);
  assert.doesNotMatch(page, /ghp_abcdefghij/);
});

test('the outcomes export masks a secret holding a quote or a backslash (JSON escapes them)', async (t) => {
  const secret = 'p\\ss"word1';
  const { app, config } = buildTestApp(t, { env: { BUGBOT_SMTP_USER: 'mailer', BUGBOT_SMTP_PASSWORD: secret } });
  const row = { run_id: 1, ticket_id: 1, trigger_source: 'manual', service: null, label: 'failed', reason: `smtp login ${secret} refused`, finished: '2026-11-21T10:00:00.000Z', started: '2026-11-21T09:59:00.000Z', revision: 1, denials: [] };
  writeFileSync(join(config.home, 'outcomes.jsonl'), JSON.stringify(row) + '\n');
  const res = await app.request('/outcomes/export');
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /smtp login \[secret\] refused/);
  assert.ok(!text.includes('word1'), text);
});

// Review finding: the export filtered each revision by its own day: a run that ended on the
// 10th and was approved on the 20th, exported with ?to=the 10th, came as its first row alone,
// still waiting for approval (the page, going by the latest revision, showed no run); rows
// dated after now, which the page leaves out, were exported.
test('the outcomes export holds every revision of the runs the page shows, and only those', async (t) => {
  const { app, config } = buildTestApp(t);
  const base = { trigger_source: 'manual', service: null, reason: 'ok', denials: [], stages: {}, cost_usd: 0 };
  const rows = [
    { ...base, run_id: 1, ticket_id: 1, started: '2026-11-10T09:00:00.000Z', finished: '2026-11-10T10:00:00.000Z', outcome: 'clean', state: 'awaiting_approval', revision: 1 },
    { ...base, run_id: 2, ticket_id: 2, started: '2026-11-10T11:00:00.000Z', finished: '2026-11-10T12:00:00.000Z', outcome: 'failed', state: 'failed', revision: 1 },
    { ...base, run_id: 1, ticket_id: 1, started: '2026-11-10T09:00:00.000Z', finished: '2026-11-10T10:00:00.000Z', outcome: 'clean', state: 'pushed', approved_at: '2026-11-20T08:00:00.000Z', revision: 2 },
    { ...base, run_id: 3, ticket_id: 3, started: '2999-01-01T00:00:00.000Z', finished: '2999-01-01T01:00:00.000Z', outcome: 'clean', state: 'pushed', revision: 1 },
  ];
  writeFileSync(join(config.home, 'outcomes.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const exported = async (query: string) =>
    (await (await app.request(`/outcomes/export${query}`)).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { run_id: number; revision: number });
  assert.deepEqual((await exported('?to=2026-11-10')).map((r) => [r.run_id, r.revision]), [[2, 1]], 'run 1 went out on the 20th');
  assert.deepEqual((await exported('?from=2026-11-20')).map((r) => [r.run_id, r.revision]), [[1, 1], [1, 2]], 'run 1 whole, as archived');
  assert.deepEqual((await exported('')).map((r) => r.run_id), [1, 2, 1], 'nothing dated after now');
});

// Review finding: the export was joined into one string: twice the archive in memory, and
// past 512 MiB (V8's longest string) a failure instead of a file.
test('the outcomes export is sent a few hundred rows at a time: every row, in order, none cut', async (t) => {
  const { app, config } = buildTestApp(t);
  const rows = Array.from({ length: 1_234 }, (_, i) => ({ run_id: i + 1, ticket_id: i + 1, trigger_source: 'manual', service: null, outcome: 'clean', state: 'pushed', reason: `run ${i + 1}`, started: '2026-11-21T09:59:00.000Z', finished: '2026-11-21T10:00:00.000Z', revision: 1, denials: [] }));
  writeFileSync(join(config.home, 'outcomes.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const res = await app.request('/outcomes/export');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/x-ndjson/);
  assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="outcomes\.jsonl"$/);
  const reader = res.body!.getReader();
  let pieces = 0;
  let text = '';
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    pieces++;
    text += new TextDecoder().decode(r.value);
  }
  assert.ok(pieces >= 3, `${pieces} pieces`);
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'ends with a newline');
  assert.deepEqual(lines.map((l) => (JSON.parse(l) as { run_id: number }).run_id), rows.map((r) => r.run_id));
});

test('rows of the outcomes archive that lack fields (hand-edited, another tool\'s) leave every page that reads it working', async (t) => {
  const { app, config } = buildTestApp(t);
  const whole = { run_id: 1, ticket_id: 1, fingerprint: 'fp1', trigger_source: 'manual', service: null, started: '2026-11-21T09:59:00.000Z', finished: '2026-11-21T10:00:00.000Z', trigger_to_push_s: 60, stages: {}, outcome: 'clean', state: 'pushed', reason: 'ok', cost_usd: 0.5, tests: { passed: 1, failed: 0 }, denials: [], revision: 1 };
  const odd = [{ ...whole, run_id: 2, state: null }, { ...whole, run_id: 3, fingerprint: undefined }, { ...whole, run_id: 4, stages: 'x', cost_usd: '1', denials: 7, outcome: 5 }, { run_id: 5 }];
  writeFileSync(join(config.home, 'outcomes.jsonl'), [whole, ...odd].map((r) => JSON.stringify(r)).join('\n') + '\n');
  for (const path of ['/', '/outcomes', '/outcomes?since=30d', '/outcomes/export']) {
    const res = await app.request(path);
    assert.equal(res.status, 200, `${path}: ${res.status}`);
  }
});

test('the outcomes page says when its charts show fewer days than its figures count (charts keep the last 120 days)', async (t) => {
  const { app, config } = buildTestApp(t);
  const row = (id: number, finished: string) => ({ run_id: id, ticket_id: id, fingerprint: 'fp', trigger_source: 'manual', service: null, started: finished, finished, trigger_to_push_s: 60, stages: {}, outcome: 'clean', state: 'pushed', reason: 'ok', cost_usd: 0.004, tests: { passed: 1, failed: 0 }, denials: [], revision: 1 });
  const day = 86_400_000;
  const now = Date.now();
  const write = (rows: object[]) => writeFileSync(join(config.home, 'outcomes.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  write([row(1, new Date(now - 200 * day).toISOString()), row(2, new Date(now).toISOString())]);
  let html = await (await app.request('/outcomes')).text();
  assert.match(html, /id="chart-window">The charts show the last 120 days/);
  // A cost under a cent is drawn as itself, not rounded to 0.
  assert.match(html, /id="chart-cost"[\s\S]*?data-value="0\.004"/);
  write([row(1, new Date(now - 20 * day).toISOString()), row(2, new Date(now).toISOString())]);
  html = await (await app.request('/outcomes')).text();
  assert.doesNotMatch(html, /chart-window/);
});

test('the approvals page draws the first runs\' diffs and links the rest to their tickets (one GET stays bounded)', async (t) => {
  const { intake, store } = buildTestApp(t);
  const ticket = { ...store.getTicket(fileTicket(intake, 'Checkout is blank'))!, state: 'awaiting_approval' as const };
  const scrub = (s: string) => s;
  const viewer = { user: 'local', csrf: 'x', loggedIn: false, mayAct: true };
  const run = { id: 1, branch: 'bot/1', commit: null, reason: null, finishedAt: null };
  const html = String(await ApprovalsPage({ viewer, items: [{ ticket, run, files: null, diff: 'elsewhere' }], scrub, mask: scrub, approvalsEnabled: true, more: 0 }));
  assert.match(html, new RegExp(`The diff is on <a href="/tickets/${ticket.id}">ticket ${ticket.id}</a>`));
  assert.doesNotMatch(html, /No diff/);
});

test('a script with the dashboard token in its header reads a page and posts its form with the same header, cookie or not; a wrong token cannot', async (t) => {
  const { app, intake, store } = buildTestApp(t, { flags: EXPOSED, env: EXPOSED_ENV });
  const id = fileTicket(intake, 'Export fails');
  const auth = { authorization: 'Bearer dash-token-456' };
  const read = await app.request('http://localhost/', { headers: auth });
  assert.equal(read.status, 200);
  const csrf = csrfOf(await read.text())!;
  assert.ok(csrf);
  const post = (headers: Record<string, string>) =>
    app.request(`http://localhost/approvals/${id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost', ...headers }, body: form({ _csrf: csrf }) });
  assert.equal((await post({ authorization: 'Bearer wrong' })).status, 401);
  // With a cookie of some other session in its jar too: the header decides.
  const other = cookieOf(await app.request('http://localhost/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' }, body: form({ token: 'dash-token-456' }) }));
  const res = await post({ ...auth, cookie: `bugbot_session=${other}` });
  assert.equal(res.status, 303, await res.clone().text());
  assert.equal(store.getTicket(id)!.state, 'dropped', 'the cancel went through');
});

// A fix whose code reads one way and runs another ("Trojan Source": a right-to-left
// override moves what follows it on screen) was drawn as the browser lays it out: a person
// approving it saw the reordered text and no sign of the character.
test('a diff holding bidirectional or invisible characters draws each as its code point and says so above the file', async () => {
  const files = parseUnifiedDiff(
    [
      'diff --git a/src/auth.ts b/src/auth.ts',
      '--- a/src/auth.ts',
      '+++ b/src/auth.ts',
      '@@ -1 +1 @@',
      '-if (role === "admin") allow();',
      '+if (role === "user\u202e \u2066// admin\u2069 \u2066") allow();',
      'diff --git a/src/b.ts b/src/b.ts',
      '--- a/src/b.ts',
      '+++ b/src/b.ts',
      '@@ -1 +1 @@',
      '-const a = 1;',
      '+const a\u200b = 2;',
      'diff --git a/src/c.ts b/src/c.ts',
      '--- a/src/c.ts',
      '+++ b/src/c.ts',
      '@@ -1 +1 @@',
      '-plain',
      '+plainer',
      '',
    ].join('\n'),
  );
  const html = String(await DiffView({ diff: { base: 'main', ref: 'bot/1', files, truncated: false }, scrub: (s) => s, mask: (s) => s }));
  assert.doesNotMatch(html, /[\u200b\u202e\u2066\u2069]/, 'no such character reaches the page as itself');
  assert.ok(html.includes('if (role === &quot;user<span class="hidden-char"'), html);
  for (const cp of ['U+202E', 'U+2066', 'U+2069', 'U+200B']) assert.ok(html.includes(`>${cp}</span>`), cp);
  const warnings = html.split('class="hidden-warning"').length - 1;
  assert.equal(warnings, 2, 'the two files that hold one, not the third');
  const c = html.slice(html.indexOf('data-path="src/c.ts"'));
  assert.ok(!c.includes('hidden-warning') && c.includes('plainer'));
});

// Review finding: only a diff's lines were marked. A file name holding a right-to-left
// override (docs/notes\u202edm.js draws as "docs/notessj.md": code shown as a note) and
// a hunk header holding one (git quotes the line above the change) were drawn as the
// browser reorders them, and the file was not flagged.
test('a file name or hunk header holding a bidirectional character draws it as its code point and flags the file', async () => {
  const files = parseUnifiedDiff(
    [
      'diff --git a/docs/notes\u202edm.js b/docs/notes\u202edm.js',
      'new file mode 100644',
      '--- /dev/null',
      '+++ b/docs/notes\u202edm.js',
      '@@ -0,0 +1 @@',
      '+fetch(process.env.URL);',
      'diff --git a/src/d.ts b/src/d.ts',
      '--- a/src/d.ts',
      '+++ b/src/d.ts',
      '@@ -1,3 +1,3 @@ const role = "user\u202e";',
      ' a',
      '-b',
      '+c',
      '',
    ].join('\n'),
  );
  const html = String(await DiffView({ diff: { base: 'main', ref: 'bot/1', files, truncated: false }, scrub: (s) => s, mask: (s) => s }));
  const shown = html.replace(/ data-path="[^"]*"/g, '');
  assert.doesNotMatch(shown, /\u202e/, 'no such character is drawn as itself');
  assert.ok(shown.includes('docs/notes<span class="hidden-char"'), shown);
  assert.equal(html.split('class="hidden-warning"').length - 1, 2, 'both files flagged');
});

test('a private key in a diff is masked whole, its body lines too, not just the line that begins it', async () => {
  const body = ['MIIEowIBAAKCAQEAzVeryS3cretK3yB0dyL1neAAAAAAAAAAAAAAAAAAAAAA', 'SECONDLINEofKEYmaterialXYZSECONDLINEofKEYmaterialXYZ'];
  const files = parseUnifiedDiff(
    [
      'diff --git a/deploy/key.pem b/deploy/key.pem',
      'new file mode 100644',
      '--- /dev/null',
      '+++ b/deploy/key.pem',
      '@@ -0,0 +1,4 @@',
      '+-----BEGIN RSA PRIVATE KEY-----',
      ...body.map((l) => `+${l}`),
      '+-----END RSA PRIVATE KEY-----',
      'diff --git a/src/a.ts b/src/a.ts',
      '--- a/src/a.ts',
      '+++ b/src/a.ts',
      '@@ -1 +1 @@',
      '-old line',
      '+new line',
      '',
    ].join('\n'),
  );
  const scrub = createRedactor().text;
  const html = String(await DiffView({ diff: { base: 'main', ref: 'bot/1', files, truncated: false }, scrub, mask: scrub }));
  for (const line of body) assert.ok(!html.includes(line), `a key line is shown: ${line}`);
  assert.equal(html.split('[REDACTED:private-key]').length - 1, 4, 'each of its four lines masked');
  assert.match(html, /new line/, 'the lines after the key are shown');
  // A log's last lines may start inside a key: the body above its END line is the key's.
  const tail = redactLines(['worker-1 step done', 'MIIEowIBAAKCAQEAzVeryS3cretK3yB0dyL1ne', 'SECONDLINEofKEYmaterialXYZ', '-----END RSA PRIVATE KEY-----', 'next'], scrub);
  assert.deepEqual(tail, ['worker-1 step done', '[REDACTED:private-key]', '[REDACTED:private-key]', '[REDACTED:private-key]', 'next']);
  // A key a diff removes: each line carries the diff's marker.
  assert.deepEqual(redactLines(['------BEGIN RSA PRIVATE KEY-----', '-MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', '------END RSA PRIVATE KEY-----', ' context'], scrub), [
    '[REDACTED:private-key]',
    '[REDACTED:private-key]',
    '[REDACTED:private-key]',
    ' context',
  ]);
  // Code that names the marker in a string is not a key: the lines after it are shown.
  assert.deepEqual(redactLines(["const HEADER = '-----BEGIN PRIVATE KEY-----';", 'return parse(pem);'], scrub).at(-1), 'return parse(pem);');
});

test('the JSON API shows what the dashboard shows: tails redacted as lines, secrets masked in reasons and audit, reporters hashed', async (t) => {
  const token = 'ghs_FAKEgithubTOKEN1234567890abcdef';
  const home = tempDir(t);
  const config = testConfig(home, { intake: { settleSeconds: 0 }, approval: { github: { tokenEnv: 'GH_TOKEN' } } }, { GH_TOKEN: token });
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor() });
  const at = new Date().toISOString();
  const [r] = intake.accept([
    {
      source: 'email',
      kind: 'report',
      title: 'Checkout is broken',
      message: 'help',
      labels: {},
      count: 1,
      firstSeen: at,
      lastSeen: at,
      human: true,
      sourceEventId: 'api-shows-1',
      reporter: { kind: 'email', id: 'alice.secret@example.com', address: 'alice.secret@example.com', thread: '<m1@mail.example.com>', subject: 'hi', references: '<0.alice.secret@example.com>' },
    },
  ]);
  const id = r!.ticketId!;
  store.audit(id, 'approvals', 'approval-failed', `git said https://x-access-token:${token}@github.com/o/r.git`);
  const tail = ['-----BEGIN OPENSSH PRIVATE KEY-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW', '-----END OPENSSH PRIVATE KEY-----', 'password=hunter2hunter2', `pushed with ${token}`];
  const dispatcher = {
    workers: () => [{ worker: 1, ticket: id, title: 't', run: 1, port: 4001, phase: null, elapsed_s: 1, tokens: 0, cost_usd: 0, tool_calls: 0, tail }],
    held: () => null,
    pausedSlots: () => [],
    cancel: () => false,
    poke: () => {},
  };
  const app = createApp({ config, store, intake, logger: silentLogger, dispatcher: dispatcher as never });
  const workers = await (await app.request('http://127.0.0.1/api/workers')).text();
  for (const secret of ['b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ', 'hunter2hunter2', token]) assert.ok(!workers.includes(secret), `/api/workers shows ${secret}`);
  // Redacted, not dropped: the tail's lines are there, what they hide masked.
  const shown = (JSON.parse(workers) as { workers: Array<{ tail: string[] }> }).workers[0]!.tail;
  assert.deepEqual(shown, ['[REDACTED:private-key]', '[REDACTED:private-key]', '[REDACTED:private-key]', 'password=[REDACTED]', 'pushed with [secret]']);
  for (const path of ['/api/tickets', `/api/tickets/${id}`, `/tickets/${id}`]) {
    const text = await (await app.request(`http://127.0.0.1${path}`)).text();
    assert.ok(!text.includes("alice.secret@example.com"), `${path} shows the reporter's address: ${text.slice(Math.max(0, text.indexOf("alice.secret") - 200), text.indexOf("alice.secret") + 50)}`);
    assert.ok(!text.includes(token), `${path} shows the token`);
  }
  const detail = (await (await app.request(`http://127.0.0.1/api/tickets/${id}`)).json()) as { ticket: { reporters: Array<{ id: string }> }; audit: Array<{ actor: string; detail: string }> };
  assert.match(detail.ticket.reporters[0]!.id, /^<email:[0-9a-f]{12}>$/, 'hashed, as "reported by" on the page');
  assert.ok(detail.audit.some((a) => /^email:<email:[0-9a-f]{12}>$/.test(a.actor)), 'the audit names the reporter by the hash too');
  assert.ok(detail.audit.some((a) => a.detail === 'git said https://x-access-token:[secret]@github.com/o/r.git'), "bugbot's own text: the secret masked, the rest as written");
  // A run's reason quotes git's and the model's words: redacted as the dashboard redacts it.
  const claim = claimNext(store, 1, null, 600)!;
  assert.equal(claim.ticket.id, id);
  finishRun(store, claim.run.id, { ticketState: 'failed', outcome: 'failed', reason: `could not push: bob.secret@example.com has no access (${token})` });
  const runs = ((await (await app.request(`http://127.0.0.1/api/tickets/${id}`)).json()) as { runs: Array<{ reason: string }> }).runs;
  assert.match(runs[0]!.reason, /^could not push: <email:[0-9a-f]{12}> has no access/);
  assert.ok(!runs[0]!.reason.includes(token), runs[0]!.reason);
});

test('where a form or a login goes back to: printable ASCII on this site, non-ASCII percent-encoded, anything else the default (Node refuses a control character in Location)', async (t) => {
  assert.equal(localPath('/tickets/3?run=2'), '/tickets/3?run=2');
  assert.equal(localPath('/☃'), '/%E2%98%83', 'as a browser sends it');
  for (const bad of ['/\x01', '/tickets/3\x7f', '/a b', '/a\tb', '//evil.example', '/\\evil.example', 'tickets', '/\ud800', `/${'a'.repeat(2000)}`]) {
    assert.equal(localPath(bad, '/approvals'), '/approvals', JSON.stringify(bad.slice(0, 20)));
  }
  const { app, intake, store } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } } });
  for (const [next, location] of [['/%01', '/'], ['/tickets/1%7F', '/'], ['/%E2%98%83', '/%E2%98%83']]) {
    const res = await app.request(`http://localhost/login?next=${next}`);
    assert.equal(res.status, 303, next);
    assert.equal(res.headers.get('location'), location, next);
  }
  // The action is done before the redirect: a return_to Node would refuse must not turn it into a 500.
  const id = fileTicket(intake, 'Control character');
  const first = await app.request(`http://localhost/tickets/${id}`, { headers: { accept: 'text/html' } });
  const session = cookieOf(first)!;
  const res = await app.request(`http://localhost/approvals/${id}/cancel`, {
    method: 'POST',
    headers: { cookie: `bugbot_session=${session}`, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ _csrf: csrfOf(await first.text())!, return_to: `/tickets/${id}\x7f` }),
  });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get('location'), '/approvals');
  assert.equal(store.getTicket(id)!.state, 'dropped');
});

test('dashboard pages and the JSON API are never cached (no-store); the live stream keeps its no-cache', async (t) => {
  const { app, intake } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } } });
  const id = fileTicket(intake, 'Cached page');
  for (const path of ['/', '/approvals', `/tickets/${id}`, '/tickets/999', '/outcomes', '/outcomes/export', '/api/tickets', `/api/tickets/${id}`, '/api/tickets/999', '/api/workers']) {
    const res = await app.request(`http://localhost${path}`);
    assert.equal(res.headers.get('cache-control'), 'no-store', `${path} (${res.status})`);
  }
  const exposed = buildTestApp(t, { flags: EXPOSED, env: EXPOSED_ENV }).app;
  assert.equal((await exposed.request('/approvals', { headers: { authorization: 'Bearer dash-token-456' } })).headers.get('cache-control'), 'no-store');
  const live = await app.request('http://localhost/live');
  assert.match(live.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.equal(live.headers.get('cache-control'), 'no-cache');
  await live.body!.cancel();
});

test("a proxy's own Authorization header on a logged-in person's pages is no failed login: the login form and the token keep working", async (t) => {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' };
  const proxy = { authorization: `Basic ${Buffer.from('proxy-user:proxy-pass').toString('base64')}` };
  // Token only: a Basic header is a scheme this dashboard takes no credential for.
  const { app } = buildTestApp(t, { flags: EXPOSED, env: EXPOSED_ENV });
  const login = await app.request('http://localhost/login', { method: 'POST', headers, body: form({ token: 'dash-token-456' }) });
  const cookie = `bugbot_session=${cookieOf(login)}`;
  for (let i = 0; i < 25; i++) assert.equal((await app.request('http://localhost/approvals', { headers: { ...proxy, cookie } })).status, 200);
  // Before the login too (the redirect to the form): nothing was guessed.
  for (let i = 0; i < 25; i++) assert.equal((await app.request('http://localhost/approvals', { headers: proxy })).status, 401);
  assert.equal((await app.request('http://localhost/login', { method: 'POST', headers, body: form({ token: 'dash-token-456' }) })).status, 200);
  assert.equal((await app.request('http://localhost/', { headers: { authorization: 'Bearer dash-token-456' } })).status, 200);

  // Basic configured as well: the proxy's pair is a wrong one, yet a person logged in by cookie guesses nothing.
  const both = buildTestApp(t, {
    flags: { ...EXPOSED, dashboard: { basicUserEnv: 'DASH_USER', basicPasswordEnv: 'DASH_PASS' } },
    env: { ...EXPOSED_ENV, DASH_USER: 'ops', DASH_PASS: 'pa:ss-789' },
  }).app;
  const login2 = await both.request('http://localhost/login', { method: 'POST', headers, body: form({ user: 'ops', password: 'pa:ss-789' }) });
  const cookie2 = `bugbot_session=${cookieOf(login2)}`;
  for (let i = 0; i < 25; i++) assert.equal((await both.request('http://localhost/approvals', { headers: { ...proxy, cookie: cookie2 } })).status, 200);
  assert.equal((await both.request('http://localhost/login', { method: 'POST', headers, body: form({ token: 'dash-token-456' }) })).status, 200);
  // Without a cookie the same wrong pair is a guess, and counts.
  for (let i = 0; i < 20; i++) assert.equal((await both.request('http://localhost/approvals', { headers: proxy })).status, 401);
  assert.equal((await both.request('http://localhost/login', { method: 'POST', headers, body: form({ token: 'dash-token-456' }) })).status, 429);
});

test('file names in a diff as git writes them: a name holding " b/", names git quotes (quote, backslash, tab, newline, octal bytes), renames, added and deleted', async (t) => {
  const files = parseUnifiedDiff(
    [
      'diff --git a/config.ts b/README.md b/config.ts b/README.md',
      'index 7898192..d49c2e7 100644',
      '--- a/config.ts b/README.md\t',
      '+++ b/config.ts b/README.md\t',
      '@@ -1 +1,2 @@',
      ' a',
      '+more',
      'diff --git "a/q\\"uo\\\\te\\tx" "b/q\\"uo\\\\te\\tx"',
      '--- "a/q\\"uo\\\\te\\tx"',
      '+++ "b/q\\"uo\\\\te\\tx"',
      '@@ -1 +1 @@',
      '-a',
      '+b',
      'diff --git "a/snow\\342\\230\\203\\nline" "b/snow\\342\\230\\203\\nline"',
      'new file mode 100644',
      '--- /dev/null',
      '+++ "b/snow\\342\\230\\203\\nline"',
      '@@ -0,0 +1 @@',
      '+x',
      'diff --git a/old b/x "b/new \\"b/x"',
      'similarity index 100%',
      'rename from old b/x',
      'rename to "new \\"b/x"',
      'diff --git "a/gone \\"x" "b/gone \\"x"',
      'deleted file mode 100644',
      'Binary files "a/gone \\"x" and /dev/null differ',
      'diff --git a/one b/two b/three',
      'old mode 100644',
      'new mode 100755',
      '',
    ].join('\n'),
  );
  assert.deepEqual(
    files.map((f) => [f.oldPath, f.newPath, f.status]),
    [
      ['config.ts b/README.md', 'config.ts b/README.md', 'modified'],
      ['q"uo\\te\tx', 'q"uo\\te\tx', 'modified'],
      ['snow☃\nline', 'snow☃\nline', 'added'],
      ['old b/x', 'new "b/x', 'renamed'],
      ['gone "x', 'gone "x', 'deleted'],
      ['', '', 'modified'],
    ],
  );
  // Which of "a/one b/two b/three" is the name cannot be told: the heading says so.
  const html = String(await DiffView({ diff: { base: 'main', ref: 'bot/1', files: files.slice(-1), truncated: false }, scrub: (s) => s, mask: (s) => s }));
  assert.ok(html.includes(UNNAMED), html);

  // Real git, quotePath as the dashboard runs it: every name exact.
  const target = createGitTarget(tempDir(t));
  const names = ['config.ts b/README.md', 'q"uote\\back', 'tab\there', 'new\nline', 'snow☃', 'sp ace', 'emoji 🐛 "quoted"'];
  target.git('checkout', '--quiet', '-b', 'bot/names');
  for (const name of names) {
    mkdirSync(join(target.repo, name, '..'), { recursive: true });
    writeFileSync(join(target.repo, name), 'x\n');
  }
  target.git('add', '-A');
  target.git('commit', '--quiet', '-m', 'names');
  const diff = await runDiff({ repo: target.repo, remote: 'origin', baseBranch: 'main', branch: 'bot/names', maxBytes: 1_000_000 });
  assert.ok(!('error' in diff), JSON.stringify(diff));
  assert.deepEqual(diff.files.map((f) => f.newPath).sort(), [...names].sort());
});

// Review finding: the approval diff was measured from refs/remotes/origin/main, which the
// agent's sandbox can move onto its own commit, hiding what it added from the approver.
test("the approval diff starts at the run's recorded first commit, not a ref the agent could move", async (t) => {
  const target = createGitTarget(tempDir(t));
  const { base } = sneakBehindMovedBase(target, 'bot/sneak');
  const req = { repo: target.repo, remote: 'origin', baseBranch: 'main', branch: 'bot/sneak', maxBytes: 1_000_000 };
  const moved = await runDiff(req);
  assert.ok(!('error' in moved));
  assert.deepEqual(moved.files.map((f) => f.newPath), ['greeting.txt'], 'from the moved ref, the file is hidden');
  const recorded = await runDiff({ ...req, baseCommit: base });
  assert.ok(!('error' in recorded));
  assert.deepEqual(recorded.files.map((f) => f.newPath).sort(), ['greeting.txt', 'infra/deploy.yaml']);
});

test("a run's reason is redacted like agent text wherever it is shown (it carries git's and the model's words)", async (t) => {
  const { app, intake, store, config } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' } } });
  const id = fileTicket(intake, 'Push refused');
  const { run } = finishAwaiting({ store, config, ticketId: id });
  const token = `ghp_${'Zy9Xw8Vu7T'.repeat(4)}`;
  const reason = `push failed: remote: invalid credentials ${token} for alice.push@example.com`;
  const row = { run_id: run.id, ticket_id: id, trigger_source: 'manual', service: null, outcome: 'failed', state: 'awaiting_approval', reason, started: run.started_at, finished: new Date().toISOString(), revision: 1, stages: {}, denials: [] };
  writeFileSync(join(config.home, 'outcomes.jsonl'), JSON.stringify(row) + '\n');
  for (const path of ['/', `/tickets/${id}`, '/approvals']) {
    const html = await (await app.request(`http://localhost${path}`)).text();
    assert.match(html, /push failed: remote: invalid credentials \[REDACTED:github-token\]/, path);
    assert.ok(!html.includes(token) && !html.includes('alice.push@example.com'), `${path} shows the reason as written`);
  }
});

/**
 * What the dashboard's pages tell a person, found by a new user: test failures the base
 * branch has too, errors a browser gets as pages (the API's stay JSON), where the local
 * key is, a `?run=` the ticket does not have, and what the queue priority means.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TestResult, testCounts } from '../../control/dashboard/tests-view.tsx';
import { fileTicket, finishAwaiting } from '../support/approval.ts';
import { buildTestApp, cookieOf, csrfOf } from '../support/helpers.ts';

const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
const KEY = 'local-key-0123456789abcdefghij';

const apostrophe = (s: string) => s.replace(/'/g, '&#39;');

// Found by a new user: with the example app's two other open bugs, a clean fix read
// "tests 5 passed, 2 failed" with nothing saying the 2 fail on the base branch as well.
test("a fix's test failures that the base branch has too are said to be not its own, on its ticket page and on /approvals; others stand out", async (t) => {
  const { app, intake, store, config } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' } } });
  const id = fileTicket(intake, 'Basket total', 'it broke');
  const { run, ticketDir } = finishAwaiting({ store, config, ticketId: id });
  let revision = 0;
  const archive = (tests: object) => {
    const row = { run_id: run.id, ticket_id: id, fingerprint: 'fp', trigger_source: 'manual', service: null, outcome: 'clean', state: 'awaiting_approval', reason: 'pushed for approval', started: run.started_at, finished: new Date().toISOString(), stages: {}, denials: [], tests, revision: ++revision };
    appendFileSync(join(config.home, 'outcomes.jsonl'), JSON.stringify(row) + '\n');
  };
  const pages = async () => Promise.all([`/tickets/${id}`, '/approvals'].map(async (p) => [p, await (await app.request(`http://localhost${p}`, { headers: HTML })).text()] as const));

  archive({ passed: 5, failed: 2, preexisting_failures: 2 });
  for (const [path, html] of await pages()) {
    assert.ok(html.includes(apostrophe("5 passed, 2 failed (2 also fail on the base branch: not this fix's)")), `${path}: ${html}`);
    assert.doesNotMatch(html, /tests-new/, path);
  }
  archive({ passed: 5, failed: 3, preexisting_failures: 2 });
  for (const [path, html] of await pages()) {
    assert.ok(html.includes(apostrophe(`5 passed, 3 failed (<strong class="tests-new">1 not known to fail on the base branch</strong>; 2 also fail on the base branch: not this fix's)`)), `${path}: ${html}`);
  }
  // A row without the field (an older harness): push.env's count stands in.
  archive({ passed: 5, failed: 2 });
  appendFileSync(join(ticketDir, 'push.env'), 'tests_preexisting=2\n');
  for (const [path, html] of await pages()) {
    assert.ok(html.includes(apostrophe("5 passed, 2 failed (2 also fail on the base branch: not this fix's)")), `${path}: ${html}`);
  }
});

test('test counts: none recorded, all passing, all failures on the base branch too, and failures nobody knows to be old', () => {
  const text = (tests: unknown, push?: Record<string, string>) => String(TestResult({ tests: testCounts(tests, push) })).replace(/<[^>]+>/g, '').replace(/&#39;/g, "'");
  assert.equal(text(null), '—');
  assert.equal(text({ passed: null, failed: null, preexisting_failures: 0 }), '—');
  assert.equal(text({ passed: 12, failed: 0, preexisting_failures: 0 }), '12 passed, 0 failed');
  assert.equal(text({ passed: 4, failed: 1, preexisting_failures: 1 }), "4 passed, 1 failed (1 also fails on the base branch: not this fix's)");
  assert.equal(text({ passed: 4, failed: 2 }), '4 passed, 2 failed (2 not known to fail on the base branch)');
  assert.equal(text({ passed: 4, failed: 2, preexisting_failures: '1' }, { tests_preexisting: '0' }), "4 passed, 2 failed (1 not known to fail on the base branch; 1 also fails on the base branch: not this fix's)");
  assert.match(String(TestResult({ tests: testCounts({ passed: 4, failed: 2 }) })), /<strong class="tests-new">2 not known/);
});

// Found by a new user: an old login link after a restart, a mistyped page and a form
// post without the action key each showed the browser raw JSON.
test('a browser gets dashboard errors as pages (status kept, message escaped, the way back); the API, webhooks and other clients keep the JSON', async (t) => {
  const { app, intake, config } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } }, localKey: KEY });
  const id = fileTicket(intake, 'Checkout', 'it broke');

  const oldLink = await app.request('http://localhost/login?key=key-of-an-earlier-start', { headers: HTML });
  assert.equal(oldLink.status, 401);
  assert.match(oldLink.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(oldLink.headers.get('cache-control'), 'no-store');
  assert.match(oldLink.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const oldHtml = await oldLink.text();
  assert.match(oldHtml, /wrong local key \(it changes with every start of bugbot\)/);
  assert.ok(oldHtml.includes(`<code>${join(config.home, 'server.json')}</code>`), 'says where the current key is');
  assert.match(oldHtml, /<form method="get" action="\/login">/);
  assert.match(oldHtml, /<a href="\/">Back to the overview<\/a>/);
  assert.ok(!oldHtml.includes(KEY), 'never the key itself');
  assert.deepEqual(await (await app.request('http://localhost/login?key=key-of-an-earlier-start')).json(), {
    error: { code: 'unauthorized', message: 'wrong local key (it changes with every start of bugbot)' },
  });

  const typo = await app.request('http://localhost/approval', { headers: HTML });
  assert.equal(typo.status, 404);
  assert.match(await typo.text(), /<h1>404<\/h1><p class="message">no route for GET \/approval<\/p>/);
  const hostile = await (await app.request('http://localhost/x%22%3Cb%3Ehi', { headers: HTML })).text();
  assert.doesNotMatch(hostile, /<b>hi/, 'the path is escaped');
  for (const path of ['/approval', '/api/nope', '/triggers/nope', '/slack/nope', '/healthz/x']) {
    for (const headers of [{}, HTML]) {
      if (!path.startsWith('/approval') || headers !== HTML) {
        const res = await app.request(`http://localhost${path}`, { headers });
        assert.equal(res.status, 404, path);
        assert.deepEqual(await res.json(), { error: { code: 'not_found', message: `no route for GET ${path}` } }, `${path} ${JSON.stringify(headers)}`);
      }
    }
  }
  const badExport = await app.request('http://localhost/outcomes/export?from=yesterday');
  assert.equal(badExport.status, 400);
  assert.equal(((await badExport.json()) as { error: { code: string } }).error.code, 'bad_request');

  // A keyed session whose browser lost its action key (another browser profile, storage cleared).
  const login = await app.request(`http://localhost/login?key=${KEY}`);
  const session = cookieOf(login)!;
  const csrf = csrfOf(await (await app.request(`http://localhost/tickets/${id}`, { headers: { cookie: `bugbot_session=${session}` } })).text())!;
  const post = (headers: Record<string, string>, cookie = session) =>
    app.request(`http://localhost/approvals/${id}/cancel`, {
      method: 'POST',
      headers: { cookie: `bugbot_session=${cookie}`, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ _csrf: csrf, return_to: `/tickets/${id}` }).toString(),
    });
  const noKey = await post(HTML);
  assert.equal(noKey.status, 403);
  const noKeyHtml = await noKey.text();
  assert.match(noKeyHtml, /does not hold the session&#39;s action key[^<]*sign in again/);
  assert.ok(noKeyHtml.includes('server.json'), 'an open dashboard signs in again with the key');
  assert.deepEqual(await (await post({})).json(), {
    error: { code: 'forbidden', message: "this browser does not hold the session's action key (kept in the dashboard's local storage at sign-in; scripts must be on): sign in again" },
  });
  // A browser that never opened the key link.
  const browsing = cookieOf(await app.request('http://localhost/', { headers: HTML }))!;
  const unkeyed = await post(HTML, browsing);
  assert.equal(unkeyed.status, 403);
  assert.match(await unkeyed.text(), /need the local key[\s\S]*server\.json/);
  assert.equal(((await (await post({}, browsing)).json()) as { error: { code: string } }).error.code, 'forbidden');
});

test('on an exposed dashboard a browser posting without a login gets a page that leads to the login; a script gets the JSON 401', async (t) => {
  const { app } = buildTestApp(t, {
    flags: { server: { host: '0.0.0.0' }, triggers: { grafana: { enabled: false }, latency: { enabled: false }, email: { enabled: false } } },
    env: { BUGBOT_API_TOKEN: 'api-token-123', BUGBOT_DASHBOARD_TOKEN: 'dash-token-456' },
  });
  const post = (headers: Record<string, string>) => app.request('http://localhost/approvals/1/cancel', { method: 'POST', headers: { origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: '' });
  const page = await post(HTML);
  assert.equal(page.status, 401);
  assert.match(page.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.match(await page.text(), /<a href="\/login">Log in again<\/a>/);
  const json = await post({});
  assert.equal(json.status, 401);
  assert.match(json.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.deepEqual(await json.json(), { error: { code: 'unauthorized', message: 'dashboard: log in first (/login), or send a bearer token or basic auth' } });
  // The API's own 401 stays JSON for a browser too.
  const api = await app.request('http://localhost/api/tickets', { headers: HTML });
  assert.equal(api.status, 401);
  assert.equal(((await api.json()) as { error: { code: string } }).error.code, 'unauthorized');
});

test("the login page of an open loopback dashboard says where this start's local key is, without showing it", async (t) => {
  const { app, config } = buildTestApp(t, { localKey: KEY });
  const res = await app.request('http://localhost/login?next=/approvals', { headers: HTML });
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /<code>bugbot start<\/code> printed/);
  assert.ok(html.includes(`<code>${join(config.home, 'server.json')}</code>`), html);
  assert.match(html, /<input type="hidden" name="next" value="\/approvals"\/?>/);
  assert.match(html, /<input id="key" name="key" type="password"/);
  assert.ok(!html.includes(KEY));
});

test('a ticket page asked for a run the ticket does not have says so; the priority says what it is', async (t) => {
  const { app, intake, store, config } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 }, harness: { pushMode: 'approve' } } });
  const id = fileTicket(intake, 'Slow search', 'it broke');
  const { run } = finishAwaiting({ store, config, ticketId: id });
  const html = await (await app.request(`http://localhost/tickets/${id}?run=999`, { headers: HTML })).text();
  assert.match(html, new RegExp(`id="missing-run"[^>]*>Ticket #${id} has no run 999; showing its latest run, #${run.id}\\.<`));
  assert.doesNotMatch(await (await app.request(`http://localhost/tickets/${id}?run=${run.id}`)).text(), /missing-run/);
  const priority = store.getTicket(id)!.priority;
  assert.match(html, new RegExp(`<span class="priority" title="Order in the queue, highest first[^"]*">\\(queue priority ${priority}\\)</span>`));
});

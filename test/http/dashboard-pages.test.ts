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
  for (const path of ['/approval', '/api/nope', '/triggers/nope', '/slack/nope', '/healthz/x', '/readyz/x']) {
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

// A script asking for a ticket that is not there got the dashboard's HTML page (the route
// rendered its 404 itself), and /tickets/0x1, /tickets/1e0 or /tickets/1.0 showed ticket 1.
test("a ticket or an action the dashboard does not have: 404, a page for a browser, the JSON error for other clients; only a plain number names a ticket", async (t) => {
  const { app, intake, store } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } } });
  const id = fileTicket(intake, 'Checkout', 'it broke');
  assert.equal(id, 1);
  const first = await app.request(`http://localhost/tickets/${id}`, { headers: HTML });
  const session = cookieOf(first)!;
  const csrf = csrfOf(await first.text())!;
  assert.ok(csrf);
  const post = (path: string, headers: Record<string, string> = {}) =>
    app.request(`http://localhost${path}`, {
      method: 'POST',
      headers: { cookie: `bugbot_session=${session}`, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ _csrf: csrf }).toString(),
    });
  type Ask = () => Response | Promise<Response>;
  const cases: Array<[string, Ask, Ask, string]> = [
    ['/tickets/999', () => app.request('http://localhost/tickets/999'), () => app.request('http://localhost/tickets/999', { headers: HTML }), 'No ticket 999.'],
    ['/approvals/999/cancel', () => post('/approvals/999/cancel'), () => post('/approvals/999/cancel', HTML), 'No ticket 999.'],
    ['/approvals/1/merge', () => post('/approvals/1/merge'), () => post('/approvals/1/merge', HTML), 'No action "merge"; one of: approve, skip, requeue, cancel.'],
  ];
  for (const bad of ['0x1', '1e0', '1.0', '01', '%201']) {
    cases.push([`/tickets/${bad}`, () => app.request(`http://localhost/tickets/${bad}`), () => app.request(`http://localhost/tickets/${bad}`, { headers: HTML }), `No ticket ${decodeURIComponent(bad)}.`]);
    cases.push([`/approvals/${bad}/cancel`, () => post(`/approvals/${bad}/cancel`), () => post(`/approvals/${bad}/cancel`, HTML), `No ticket ${decodeURIComponent(bad)}.`]);
  }
  for (const [path, asScript, asBrowser, message] of cases) {
    const json = await asScript();
    assert.equal(json.status, 404, path);
    assert.match(json.headers.get('content-type') ?? '', /^application\/json/, path);
    assert.deepEqual(await json.json(), { error: { code: 'not_found', message } }, path);
    const html = await asBrowser();
    assert.equal(html.status, 404, path);
    assert.ok((await html.text()).includes(`<p class="message">${message.replace(/"/g, '&quot;')}</p>`), path);
  }
  assert.equal(store.getTicket(id)!.state, 'queued', 'no request above cancelled ticket 1');
  assert.equal((await app.request('http://localhost/tickets/1')).status, 200);
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

/** A ticket for each of `n` different errors (their fingerprints differ: words, not digits). */
function fileMany(intake: Parameters<typeof fileTicket>[0], n: number, prefix: string): number[] {
  const word = (i: number) => [...i.toString(26)].map((d) => String.fromCharCode(97 + parseInt(d, 26))).join('');
  return Array.from({ length: n }, (_, i) => fileTicket(intake, `${prefix} ${word(i)}`, `error in module ${word(i)}x`));
}

// Review finding: the overview listed the newest 50 tickets of a state and nothing else:
// with 60 queued, "queued 60" led to 50 of them, with no word of the other 10 nor a way to them.
test('the overview pages through a state\'s tickets, 50 at a time, and says which of how many it shows', async (t) => {
  const { app, intake } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } } });
  const ids = fileMany(intake, 60, 'Paged');
  const rows = (html: string) => [...html.matchAll(/<tr data-ticket="(\d+)"/g)].map((m) => Number(m[1]));
  const first = await (await app.request('http://localhost/?state=queued', { headers: HTML })).text();
  assert.deepEqual(rows(first), ids.slice(10).reverse(), 'the newest 50');
  assert.match(first, /id="ticket-pages"[^>]*>Tickets 1–50 of 60/);
  assert.match(first, /<a href="\/\?state=queued&amp;page=2"[^>]*>older<\/a>/);
  const second = await (await app.request('http://localhost/?state=queued&page=2', { headers: HTML })).text();
  assert.deepEqual(rows(second), ids.slice(0, 10).reverse(), 'the 10 older ones');
  assert.match(second, /Tickets 51–60 of 60/);
  assert.match(second, /<a href="\/\?state=queued"[^>]*>newer<\/a>/);
  assert.doesNotMatch(second, />older</);
  // All states: the same paging; a page past the end says so and leads back.
  assert.match(await (await app.request('http://localhost/?page=2', { headers: HTML })).text(), /Tickets 51–60 of 60/);
  const past = await (await app.request('http://localhost/?state=queued&page=9', { headers: HTML })).text();
  assert.deepEqual(rows(past), []);
  assert.match(past, /No tickets on page 9 \(60 in all\)/);
  assert.match(past, /<a href="\/\?state=queued"[^>]*>first page<\/a>/);
  // A page number that is none is the first page.
  assert.deepEqual(rows(await (await app.request('http://localhost/?state=queued&page=x', { headers: HTML })).text()), ids.slice(10).reverse());
  // Few tickets: no pager at all.
  const few = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } } });
  fileMany(few.intake, 3, 'Few');
  assert.doesNotMatch(await (await few.app.request('http://localhost/', { headers: HTML })).text(), /ticket-pages/);
});

// Review finding: the outcomes page's table of runs stopped at 200 without a word, under
// a summary counting every run of the filter.
test('the outcomes page says when its table of runs shows only the latest 200, and where the rest are', async (t) => {
  const { app, config } = buildTestApp(t);
  const row = (i: number) => {
    const at = new Date(Date.now() - i * 3_600_000).toISOString();
    return JSON.stringify({ run_id: i, ticket_id: i, fingerprint: 'fp', trigger_source: 'manual', service: null, outcome: 'clean', state: 'pushed', reason: 'pushed', started: at, finished: at, stages: {}, denials: [], revision: 1 });
  };
  const archive = join(config.home, 'outcomes.jsonl');
  appendFileSync(archive, Array.from({ length: 200 }, (_, i) => row(i + 1)).join('\n') + '\n');
  const all = await (await app.request('http://localhost/outcomes', { headers: HTML })).text();
  assert.equal([...all.matchAll(/<tr data-run=/g)].length, 200);
  assert.doesNotMatch(all, /id="runs-cut"/, 'every run is in the table');
  appendFileSync(archive, `${row(201)}\n${row(202)}\n`);
  const cut = await (await app.request('http://localhost/outcomes', { headers: HTML })).text();
  assert.equal([...cut.matchAll(/<tr data-run=/g)].length, 200);
  assert.match(cut, /id="runs-cut"[^>]*>The latest 200 of 202 runs; <a href="\/outcomes\/export">the export<\/a> has them all/);
  assert.doesNotMatch(cut, /data-run="202"/, 'the oldest left out');
});

// Review finding: every report merged into a ticket adds a line to its timeline and a name
// to "reported by", all of them drawn: a flood of 3,000 emails made a 800 KB page whose
// runs, plan and diff lay below 3,000 lines of "merged-report".
test("a ticket's timeline shows its first and latest entries and says how many lie between; reporters past the first 20 are counted", async (t) => {
  const { app, intake, store } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } } });
  const id = fileTicket(intake, 'Checkout broken for everyone', 'it broke');
  for (let i = 0; i < 300; i++) store.audit(id, `email:r${i}`, 'merged-report', `report ${i}`);
  for (let i = 0; i < 45; i++) store.addReporter(id, { kind: 'slack', id: `U${i}` });
  const html = await (await app.request(`http://localhost/tickets/${id}`, { headers: HTML })).text();
  const entries = [...html.matchAll(/<li data-action="([^"]+)">/g)].map((m) => m[1]);
  assert.equal(store.auditTrail(id).length, 302, 'created, queued, 300 reports');
  assert.equal(entries.length, 200, 'the first 20 and the latest 180');
  assert.deepEqual(entries.slice(0, 2), ['created', 'queue']);
  assert.ok(html.includes('report 17<') && !html.includes('report 18<'), 'the first 20 (created, queued and 18 reports)');
  assert.ok(!html.includes('report 119<') && html.includes('report 120<') && html.includes('report 299<'), 'the latest 180');
  assert.match(html, new RegExp(`id="timeline-cut"[^>]*>102 entries not shown here \\(/api/tickets/${id} lists every one\\)<`));
  assert.match(html, /<dd>slack U0, slack U1, [^<]*slack U19 and 25 more<\/dd>/);
  // A short story is shown whole.
  const short = fileTicket(intake, 'Search is slow', 'search takes a minute');
  const whole = await (await app.request(`http://localhost/tickets/${short}`, { headers: HTML })).text();
  assert.doesNotMatch(whole, /timeline-cut/);
});

// Review finding: "Occurrences over time" drew the newest 500 reports of a ticket (what the
// store hands out) as if they were all: an alert storm's week read as its last hour.
test("a ticket's occurrence chart says when it draws only the latest reports, and since when", async (t) => {
  const { app, intake, store } = buildTestApp(t, { flags: { intake: { settleSeconds: 0 } } });
  const start = Date.now() - 7 * 86_400_000;
  const storm = (from: number, n: number) =>
    intake.accept(
      Array.from({ length: n }, (_, i) => {
        const at = new Date(start + (from + i) * 60_000).toISOString();
        return { source: 'alertmanager' as const, kind: 'error' as const, service: 'shop', title: 'Checkout 500s', message: 'upstream timed out', labels: {}, count: 1, firstSeen: at, lastSeen: at, human: false, sourceEventId: `storm-${from + i}` };
      }),
    );
  storm(0, 500);
  const id = store.listTickets({ limit: 1 })[0]!.id;
  const whole = await (await app.request(`http://localhost/tickets/${id}`, { headers: HTML })).text();
  assert.doesNotMatch(whole, /occurrences-cut/, 'all 500 drawn');
  storm(500, 20);
  const html = await (await app.request(`http://localhost/tickets/${id}`, { headers: HTML })).text();
  const since = new Date(start + 20 * 60_000).toISOString();
  assert.match(html, new RegExp(`id="occurrences-cut"[^>]*>The chart draws the latest 500 reports, since <time datetime="${since}">[^<]+</time>; the ticket counts 520 occurrences in all\\.<`));
});

// Review finding: a filter naming a source or service no run has (a link from elsewhere,
// a typo) showed "No runs match." under a select reading "all".
test('the outcomes filter shows the source and service it applies, even one no run has', async (t) => {
  const { app, config } = buildTestApp(t);
  const at = new Date().toISOString();
  appendFileSync(join(config.home, 'outcomes.jsonl'), JSON.stringify({ run_id: 1, ticket_id: 1, fingerprint: 'fp', trigger_source: 'grafana', service: 'shop', outcome: 'clean', state: 'pushed', reason: 'pushed', started: at, finished: at, stages: {}, denials: [], revision: 1 }) + '\n');
  const html = await (await app.request('http://localhost/outcomes?source=slakc&service=shop', { headers: HTML })).text();
  assert.match(html, /No runs match\./);
  assert.match(html, /<select name="source"><option value="">all<\/option><option value="grafana">grafana<\/option><option value="slakc" selected="">slakc \(no runs\)<\/option><\/select>/);
  assert.match(html, /<select name="service"><option value="">all<\/option><option value="shop" selected="">shop<\/option><\/select>/);
});

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import type { Ticket } from '../../control/types.ts';
import { buildTestApp, fixtureJson, fixtureText, postJson } from '../support/helpers.ts';

test('latency: the small JSON form and alert webhooks become latency tickets', async (t) => {
  const { app, store } = buildTestApp(t);
  const small = await postJson(app, '/triggers/latency', { service: 'petstore', route: 'GET /api/pets', p95_ms: 1840, threshold_ms: 500 });
  assert.equal(small.status, 200);
  const webhook = fixtureJson<{ alerts: Array<{ labels: Record<string, string> }> }>('alertmanager', 'webhook_firing_zulip.json');
  const res = await postJson(app, '/triggers/latency', webhook);
  assert.equal(res.status, 200);
  const tickets = store.listTickets();
  assert.ok(tickets.length >= 2);
  assert.ok(tickets.every((x) => x.kind === 'latency'), 'every ticket from /triggers/latency is a latency ticket');
  const pets = tickets.find((x) => x.service === 'petstore')!;
  assert.equal(pets.route, 'GET /api/pets');
  assert.match(pets.title, /P95 latency 1840 ms on GET \/api\/pets exceeds 500 ms/);
  const latencyOnGrafana = await postJson(app, '/triggers/grafana', {
    version: '4',
    alerts: [{ status: 'firing', labels: { alertname: 'CheckoutP95Latency', service: 'shop' }, annotations: { summary: 'slow checkout' } }],
  });
  assert.equal(latencyOnGrafana.status, 200);
  assert.equal(store.listTickets().find((x) => x.service === 'shop')!.kind, 'latency', 'alert names matching the latency pattern');
});

test('latency: bad small JSON is a 400 naming each problem', async (t) => {
  const { app, store } = buildTestApp(t);
  const res = await postJson(app, '/triggers/latency', { service: '', p95_ms: 'slow', threshold_ms: 500 });
  assert.equal(res.status, 400);
  const msg = ((await res.json()) as { error: { message: string } }).error.message;
  assert.match(msg, /service/);
  assert.match(msg, /route/);
  assert.match(msg, /p95_ms/);
  assert.equal(store.countEvents(), 0);
});

test('manual filing: API token, idempotency key, 400 naming the field', async (t) => {
  const { app, store } = buildTestApp(t, { env: { BUGBOT_API_TOKEN: 'api-secret' } });
  const body = { title: 'Invoice PDF is blank', message: 'Customers get an empty PDF', service: 'billing', filed_by: 'ops' };
  assert.equal((await postJson(app, '/api/tickets', body)).status, 401, 'no token');
  assert.equal((await postJson(app, '/api/tickets', body, { authorization: 'Bearer nope' })).status, 401);
  const auth = { authorization: 'Bearer api-secret', 'idempotency-key': 'req-1' };
  const res = await postJson(app, '/api/tickets', body, auth);
  assert.equal(res.status, 201);
  const created = (await res.json()) as { status: string; ticket: Ticket };
  assert.equal(created.ticket.state, 'queued', 'a person filed it: triaged at once and acted on');
  assert.equal(created.ticket.human, true);
  const retry = (await (await postJson(app, '/api/tickets', body, auth)).json()) as { status: string };
  assert.equal(retry.status, 'duplicate');
  assert.equal(store.listTickets().length, 1);
  const bad = await postJson(app, '/api/tickets', { message: 'no title', extra: 1 }, auth);
  assert.equal(bad.status, 400);
  const msg = ((await bad.json()) as { error: { message: string } }).error.message;
  assert.match(msg, /title/);
  assert.match(msg, /extra/);
});

test('read side: list by state, one ticket with occurrences and triage, health', async (t) => {
  const { app } = buildTestApp(t);
  await postJson(app, '/triggers/grafana', fixtureJson('alertmanager', 'webhook_firing_zulip.json'));
  await postJson(app, '/api/tickets', { title: 'Search returns nothing', message: 'Search is broken for every query' });
  const all = (await (await app.request('/api/tickets')).json()) as { tickets: Ticket[]; counts: Record<string, number> };
  assert.equal(all.tickets.length, 2);
  assert.deepEqual(all.counts, { settling: 1, queued: 1 });
  const settling = (await (await app.request('/api/tickets?state=settling')).json()) as { tickets: Ticket[] };
  assert.equal(settling.tickets.length, 1);
  const cpu = settling.tickets[0]!;
  const detail = (await (await app.request(`/api/tickets/${cpu.id}`)).json()) as {
    ticket: Ticket;
    occurrences: Array<{ count: number }>;
    triage: { decision: string | null };
    audit: Array<{ action: string }>;
  };
  assert.equal(detail.ticket.count, 2);
  assert.equal(detail.occurrences.length, 2);
  assert.equal(detail.triage.decision, null, 'still settling');
  assert.deepEqual(detail.audit.map((a) => a.action), ['created']);
  const queuedId = all.tickets.find((x) => x.state === 'queued')!.id;
  const queued = (await (await app.request(`/api/tickets/${queuedId}`)).json()) as { triage: { decision: string; reason: string } };
  assert.equal(queued.triage.decision, 'queue');
  assert.match(queued.triage.reason, /filed by a person/);

  assert.equal((await app.request('/api/tickets?state=nope')).status, 400);
  assert.equal((await app.request('/api/tickets/abc')).status, 400);
  const missing = await app.request('/api/tickets/999');
  assert.equal(missing.status, 404);
  assert.match(((await missing.json()) as { error: { message: string } }).error.message, /no ticket 999/);
  const health = (await (await app.request('/healthz')).json()) as { ok: boolean; tickets: Record<string, number> };
  assert.equal(health.ok, true);
  assert.equal(health.tickets.queued, 1);
});

function mailgunForm(fields: Record<string, string>): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.set(k, v);
  return form;
}

test('Mailgun route: signed form → ticket; forged, stale and replayed → 401 with no row', async (t) => {
  const key = 'mailgun-signing-key';
  const { app, store } = buildTestApp(t, { env: { MAILGUN_SIGNING_KEY: key } });
  const fixture = fixtureJson<Record<string, string>>('mailgun', 'inbound_route_parsed_form_fields.json');
  const sign = (ts: string, token: string) => createHmac('sha256', key).update(ts + token).digest('hex');
  const now = String(Math.floor(Date.now() / 1000));
  const fresh = { ...fixture, timestamp: now, token: 'tok-fresh-1', signature: sign(now, 'tok-fresh-1') };

  const forged = await app.request('/triggers/email/mailgun', { method: 'POST', body: mailgunForm({ ...fresh, signature: 'ab'.repeat(32) }) });
  assert.equal(forged.status, 401);
  const old = String(Math.floor(Date.now() / 1000) - 600);
  const stale = await app.request('/triggers/email/mailgun', {
    method: 'POST',
    body: mailgunForm({ ...fixture, timestamp: old, token: 'tok-old', signature: sign(old, 'tok-old') }),
  });
  assert.equal(stale.status, 401);
  assert.equal(store.countEvents(), 0);

  const ok = await app.request('/triggers/email/mailgun', { method: 'POST', body: mailgunForm(fresh) });
  assert.equal(ok.status, 200, await ok.clone().text());
  const [ticket] = store.listTickets();
  assert.equal(ticket!.source, 'email');
  assert.equal(ticket!.reporter?.kind, 'email');
  assert.ok(ticket!.reporter?.address, 'the sender is kept for the reply');
  assert.doesNotMatch(ticket!.message, /^>/m, 'quoted text stripped');

  const replay = await app.request('/triggers/email/mailgun', { method: 'POST', body: mailgunForm(fresh) });
  assert.equal(replay.status, 401);
  assert.match(((await replay.json()) as { error: { message: string } }).error.message, /already used/);
  assert.equal(store.countEvents(), 1);
});

test('Mailgun route without a signing key answers 503 and names the variable', async (t) => {
  const { app } = buildTestApp(t);
  const res = await app.request('/triggers/email/mailgun', { method: 'POST', body: mailgunForm({ token: 'x' }) });
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /MAILGUN_SIGNING_KEY/);
});

test('raw email route: bearer token, MIME parsed, quotes stripped', async (t) => {
  const { app, store } = buildTestApp(t, { env: { BUGBOT_EMAIL_TOKEN: 'mail-token' } });
  const eml = fixtureText('mailgun', 'reply_gmail_quoted.eml');
  assert.equal((await app.request('/triggers/email/raw', { method: 'POST', body: eml })).status, 401);
  const res = await app.request('/triggers/email/raw', { method: 'POST', body: eml, headers: { authorization: 'Bearer mail-token' } });
  assert.equal(res.status, 200, await res.clone().text());
  const [ticket] = store.listTickets();
  assert.equal(ticket!.message, 'Hello');
  const garbage = await app.request('/triggers/email/raw', { method: 'POST', body: '\u0000\u0001 not mail', headers: { authorization: 'Bearer mail-token' } });
  assert.equal(garbage.status, 400);
});

test('a body must be sent as JSON: "text/plain; x=json" (a form any web page may post cross-site) is 415, nothing filed', async (t) => {
  const { app, store } = buildTestApp(t);
  const body = JSON.stringify({ title: 'Injected from a web page' });
  for (const type of ['text/plain; x=json', 'text/plain;charset=json', 'application/x-www-form-urlencoded; json']) {
    const res = await app.request('/api/tickets', { method: 'POST', headers: { 'content-type': type }, body });
    assert.equal(res.status, 415, type);
  }
  assert.equal(store.listTickets().length, 0);
  const ok = await app.request('/api/tickets', { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body });
  assert.equal(ok.status, 201);
  const vnd = await app.request('/triggers/grafana', { method: 'POST', headers: { 'content-type': 'application/vnd.grafana+json' }, body: '{"alerts": []}' });
  assert.notEqual(vnd.status, 415, 'a +json media type is JSON');
});

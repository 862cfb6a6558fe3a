import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { createApp } from '../../control/app.ts';
import { silentLogger, type Logger } from '../../control/log.ts';
import { buildTestApp, fixtureJson, fixtureText, postJson } from '../support/helpers.ts';

interface WebhookReply {
  source: string;
  accepted: number;
  duplicates: number;
  results: Array<{ status: string; ticket: number | null; fingerprint: string }>;
  rejected: Array<{ index: number; problem: string }>;
}

const GRAFANA = [
  'webhook_firing_docs.json',
  'webhook_firing_values_v11_zulip.json',
  'webhook_mixed_firing_resolved_v9_zulip.json',
  'webhook_resolved_v9_zulip.json',
];
const ALERTMANAGER = ['webhook_firing_zulip.json', 'webhook_resolved_zulip.json', 'webhook_firing_prometheus_msteams_testdata.json'];

test('every Grafana fixture is accepted: one event per alert, firing ones become tickets', async (t) => {
  const { app, store } = buildTestApp(t);
  for (const name of GRAFANA) {
    const body = fixtureJson<{ alerts: Array<{ status: string }> }>('grafana', name);
    const res = await postJson(app, '/triggers/grafana', body);
    assert.equal(res.status, 200, `${name}: ${await res.clone().text()}`);
    const reply = (await res.json()) as WebhookReply;
    assert.equal(reply.source, 'grafana');
    assert.equal(reply.accepted + reply.duplicates, body.alerts.length, name);
    for (const [i, a] of body.alerts.entries()) {
      const r = reply.results[i]!;
      if (a.status === 'resolved') assert.equal(r.status, 'resolved', `${name} alert ${i}`);
      else assert.ok(['created', 'merged'].includes(r.status), `${name} alert ${i}: ${r.status}`);
    }
  }
  const tickets = store.listTickets();
  const titles = tickets.map((x) => x.title).sort();
  assert.ok(titles.includes('High memory usage'), titles.join(', '));
  assert.ok(titles.includes('Testing **another** failing alert'), titles.join(', '));
  assert.equal(store.countEvents(), GRAFANA.reduce((n, f) => n + fixtureJson<{ alerts: unknown[] }>('grafana', f).alerts.length, 0));
});

test("Grafana's test notification (a contact point's Test button) is acknowledged and set aside: no event, no ticket, however often it is clicked", async (t) => {
  const { app, store } = buildTestApp(t);
  const body = fixtureJson<{ alerts: Array<{ startsAt: string }> }>('grafana', 'webhook_default_payload_alerting_test.json');
  assert.equal(body.alerts[0]!.startsAt, '0001-01-01T00:00:00Z');
  for (let click = 0; click < 3; click++) {
    const res = await postJson(app, '/triggers/grafana', body);
    assert.equal(res.status, 200);
    const reply = (await res.json()) as WebhookReply & { ignored: Array<{ index: number; reason: string }> };
    assert.deepEqual([reply.accepted, reply.duplicates, reply.results, reply.rejected], [0, 0, [], []]);
    assert.deepEqual(reply.ignored.map((i) => i.index), [0]);
    assert.match(reply.ignored[0]!.reason, /a Grafana test notification/);
  }
  // What the Test button of a current Grafana sends: the reserved TestAlert, stamped now.
  const button = {
    receiver: '',
    status: 'firing',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'TestAlert', instance: 'Grafana' },
        annotations: { summary: 'Notification test' },
        startsAt: new Date().toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: '',
        fingerprint: '57c6d9296de2ad39',
        values: null,
        valueString: "[ metric='foo' labels={instance=bar} value=10 ]",
      },
    ],
    commonLabels: { alertname: 'TestAlert', instance: 'Grafana' },
    version: '1',
    title: '[FIRING:1] (TestAlert Grafana)',
    state: 'alerting',
  };
  const clicked = (await (await postJson(app, '/triggers/grafana', button)).json()) as WebhookReply & { ignored: unknown[] };
  assert.deepEqual([clicked.accepted, clicked.ignored.length], [0, 1]);
  assert.equal(store.countEvents(), 0);
  assert.deepEqual(store.listTickets(), []);
  // Beside a real alert, only the test is set aside; a reply with nothing set aside has no `ignored`.
  const real = fixtureJson<{ alerts: unknown[] }>('grafana', 'webhook_firing_docs.json');
  const mixed = await postJson(app, '/triggers/grafana', { ...real, alerts: [...real.alerts, body.alerts[0]] });
  const reply = (await mixed.json()) as WebhookReply & { ignored: Array<{ index: number }> };
  assert.deepEqual([reply.accepted, reply.ignored.map((i) => i.index)], [real.alerts.length, [real.alerts.length]]);
  const plain = (await (await postJson(app, '/triggers/grafana', fixtureJson('grafana', 'webhook_firing_docs.json'))).json()) as Record<string, unknown>;
  assert.equal('ignored' in plain, false);
});

test('Alertmanager fixtures: service and message from labels/annotations; numbers do not split a group', async (t) => {
  const { app, store } = buildTestApp(t);
  for (const name of ALERTMANAGER) {
    const res = await postJson(app, '/triggers/grafana', fixtureJson('alertmanager', name));
    assert.equal(res.status, 200, `${name}: ${await res.clone().text()}`);
    assert.equal(((await res.json()) as WebhookReply).source, 'alertmanager');
  }
  const cpu = store.listTickets().filter((x) => x.title === 'High CPU core temperature');
  // Two alerts differing only in the temperature ("34.75C" vs "17.625C") are one ticket.
  assert.equal(cpu.length, 1);
  assert.equal(cpu[0]!.count, 2);
  assert.match(cpu[0]!.message, /CPU core temperature is/);
  assert.equal(cpu[0]!.labels.host, 'andromeda');
  // The resolved notification resolves one of the ticket's two alerts (a1bc48475b20e73d);
  // the other (c2ea85182f28cbd9) still fires, so the ticket is not resolved.
  assert.equal(cpu[0]!.alertResolvedAt, null, 'one of two alerts resolved');
  const mem = store.listTickets().find((x) => x.title === 'Server High Memory usage');
  assert.ok(mem, 'old-style alert without status/fingerprint accepted');
  assert.equal(mem.service, 'docker_nodes');
});

test('route, stack and counts come from labels, annotations and values', async (t) => {
  const { app, store } = buildTestApp(t);
  const res = await postJson(app, '/triggers/grafana', {
    version: '1',
    status: 'firing',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'PetsErrors', service: 'petstore', method: 'get', route: '/api/pets/17' },
        annotations: { message: 'TypeError: Cannot read properties of undefined (reading "name")', stack: 'TypeError: x\n    at getPet (/srv/app/src/pets.ts:41:12)' },
        startsAt: '2026-11-21T09:00:00Z',
        fingerprint: 'abc',
        values: { count: 42, B: 42 },
      },
    ],
  });
  assert.equal(res.status, 200);
  const [ticket] = store.listTickets();
  assert.equal(ticket!.service, 'petstore');
  assert.equal(ticket!.route, 'GET /api/pets/17');
  assert.equal(ticket!.count, 42);
  assert.match(ticket!.stack ?? '', /getPet/);
});

test('a partly bad batch stores the good alerts and names the bad ones', async (t) => {
  const { app, store } = buildTestApp(t);
  const body = fixtureJson<{ alerts: unknown[] }>('grafana', 'webhook_firing_docs.json');
  body.alerts.push({ status: 'firing', labels: 'not-an-object' });
  const res = await postJson(app, '/triggers/grafana', body);
  assert.equal(res.status, 200);
  const reply = (await res.json()) as WebhookReply;
  assert.equal(reply.accepted, 2);
  assert.equal(reply.rejected.length, 1);
  assert.match(reply.rejected[0]!.problem, /alerts\[2\]\.labels/);
  assert.equal(store.countEvents(), 2);
});

// Review finding: the alerts refused from a partly good batch were named only in the 200's
// body, which Grafana and Alertmanager never read: they were lost without a trace.
test('alerts refused from a partly good batch are logged (a warning naming each problem), on both alert routes', async (t) => {
  const { config, store, intake } = buildTestApp(t);
  const warnings: Array<[string, Record<string, unknown> | undefined]> = [];
  const logger: Logger = { ...silentLogger, warn: (msg, fields) => void warnings.push([msg, fields]), child: () => logger };
  const app = createApp({ config, store, intake, logger });
  const good = { labels: { alertname: 'Good', service: 's' }, startsAt: '2026-11-21T10:00:00Z' };
  const bad = { labels: { alertname: 'Bad', service: 's' }, startsAt: 'yesterday, token=tok_live_9f8e7d6c5b4a3f2e1d0cAB12' };
  for (const path of ['/triggers/grafana', '/triggers/latency']) {
    const res = await postJson(app, path, { version: '4', alerts: [good, bad, { labels: 5 }] });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as WebhookReply).rejected.length, 2);
  }
  assert.equal(warnings.length, 2, JSON.stringify(warnings));
  for (const [msg, fields] of warnings) {
    assert.match(msg, /alerts refused/);
    assert.equal(fields?.refused, 2);
    const problems = fields?.problems as string[];
    assert.match(problems[0]!, /^alerts\[1\]\.startsAt: /);
    assert.match(problems[1]!, /^alerts\[2\]\.labels: /);
    assert.ok(!JSON.stringify(problems).includes('tok_live'), 'what a problem quotes is redacted');
  }
  // A batch with nothing refused logs nothing.
  await postJson(app, '/triggers/grafana', fixtureJson('grafana', 'webhook_firing_docs.json'));
  assert.equal(warnings.length, 2);
});

// Review finding: a webhook refused for its credentials was logged at debug only: a token
// rotated on one side refused every alert, and Grafana does not resend them.
test('a webhook refused for the credentials it brought is a warning (one per route every 10 minutes, with a count); one that brought none is not', async (t) => {
  const { config, store, intake } = buildTestApp(t, { env: { GF_TOKEN: 'right-token' }, flags: { triggers: { grafana: { tokenEnv: 'GF_TOKEN' } } } });
  const warnings: Array<[string, Record<string, unknown> | undefined]> = [];
  const logger: Logger = { ...silentLogger, warn: (msg, fields) => void warnings.push([msg, fields]), child: () => logger };
  const app = createApp({ config, store, intake, logger });
  const body = fixtureJson('grafana', 'webhook_firing_docs.json');
  const send = (headers: Record<string, string>) => app.request('/triggers/grafana', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  assert.equal((await send({})).status, 401);
  assert.equal(warnings.length, 0, 'no credentials: anyone\'s probe');
  for (let i = 0; i < 3; i++) assert.equal((await send({ authorization: 'Bearer old-token' })).status, 401);
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(warnings[0]![0], /webhook refused \(401\) though it brought credentials/);
  assert.equal(warnings[0]![1]?.path, '/triggers/grafana');
  assert.ok(!JSON.stringify(warnings).includes('old-token') && !JSON.stringify(warnings).includes('right-token'), 'no token in the log');
  assert.equal((await send({ authorization: 'Bearer right-token' })).status, 200);
  assert.equal(warnings.length, 1);
});

test('malformed payloads are 400s that name the problem, and store nothing', async (t) => {
  const { app, store } = buildTestApp(t);
  const cases: Array<[unknown, RegExp]> = [
    ['{not json', /not valid JSON/],
    ['', /empty body/],
    [{ alerts: [] }, /version/],
    [{ version: '7', alerts: [] }, /version "7" is not supported/],
    [{ version: '4', alerts: 'x' }, /alerts/],
    [{ version: '4', alerts: [{ labels: 5 }] }, /alerts\[0\]\.labels/],
  ];
  for (const [body, re] of cases) {
    const res = await postJson(app, '/triggers/grafana', body);
    assert.equal(res.status, 400, JSON.stringify(body));
    const err = (await res.json()) as { error: { message: string } };
    assert.match(err.error.message, re);
  }
  // A batch with no valid alert lists each one's problem as data, besides the message.
  const none = (await (await postJson(app, '/triggers/grafana', { version: '4', alerts: [{ labels: 5 }, { labels: {}, status: 'odd' }] })).json()) as {
    error: { details: Array<{ index: number; problem: string }> };
  };
  assert.deepEqual(none.error.details.map((d) => d.index), [0, 1]);
  assert.match(none.error.details[0]!.problem, /alerts\[0\]\.labels/);
  const wrongType = await app.request('/triggers/grafana', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
  assert.equal(wrongType.status, 415);
  assert.equal(store.countEvents(), 0);
});

test('a redelivered alert (same fingerprint and startsAt) is a duplicate, not a new occurrence', async (t) => {
  const { app, store } = buildTestApp(t);
  const body = fixtureJson('alertmanager', 'webhook_firing_zulip.json');
  await postJson(app, '/triggers/grafana', body);
  const again = (await (await postJson(app, '/triggers/grafana', body)).json()) as WebhookReply;
  assert.equal(again.duplicates, 2);
  assert.equal(store.listTickets()[0]!.count, 2);
});

test('oversize bodies get 413 and unknown routes a JSON 404', async (t) => {
  const { app, store } = buildTestApp(t, { flags: { server: { maxBodyBytes: 2048 } } });
  const big = fixtureJson<{ alerts: Array<{ annotations: Record<string, string> }> }>('grafana', 'webhook_firing_docs.json');
  big.alerts[0]!.annotations.description = 'x'.repeat(5000);
  const res = await postJson(app, '/triggers/grafana', big);
  assert.equal(res.status, 413);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /exceeds 2048 bytes/);
  assert.equal(store.countEvents(), 0);
  const nf = await app.request('/nope');
  assert.equal(nf.status, 404);
  assert.deepEqual(await nf.json(), { error: { code: 'not_found', message: 'no route for GET /nope' } });
});

test('bearer and basic auth: missing or wrong credentials are 401 and store nothing', async (t) => {
  const env = { GF_TOKEN: 'tok-123', GF_USER: 'grafana', GF_PASS: 'pw' };
  const { app, store } = buildTestApp(t, {
    env,
    flags: { triggers: { grafana: { tokenEnv: 'GF_TOKEN', basicUserEnv: 'GF_USER', basicPasswordEnv: 'GF_PASS' } } },
  });
  const body = fixtureText('grafana', 'webhook_firing_docs.json');
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  for (const auth of [undefined, 'Bearer wrong', basic('grafana', 'nope'), 'tok-123']) {
    const res = await postJson(app, '/triggers/grafana', body, auth ? { authorization: auth } : {});
    assert.equal(res.status, 401, String(auth));
  }
  assert.equal(store.countEvents(), 0);
  assert.equal((await postJson(app, '/triggers/grafana', body, { authorization: 'Bearer tok-123' })).status, 200);
  const body2 = fixtureText('alertmanager', 'webhook_firing_zulip.json');
  assert.equal((await postJson(app, '/triggers/grafana', body2, { authorization: basic('grafana', 'pw') })).status, 200);
});

test('Grafana HMAC: valid passes; forged, missing, stale and replayed signatures are 401 with no row', async (t) => {
  const env = { GF_HMAC: 'hmac-secret' };
  const { app, store } = buildTestApp(t, { env, flags: { triggers: { grafana: { hmacSecretEnv: 'GF_HMAC' } } } });
  const body = fixtureText('grafana', 'webhook_firing_docs.json');
  const sign = (ts: string, b = body, key = 'hmac-secret') => createHmac('sha256', key).update(`${ts}:${b}`).digest('hex');
  const now = String(Math.floor(Date.now() / 1000));
  const stale = String(Math.floor(Date.now() / 1000) - 301);
  const headers = (sig: string | undefined, ts: string | undefined) => ({
    ...(sig ? { 'X-Grafana-Alerting-Signature': sig } : {}),
    ...(ts ? { 'X-Grafana-Alerting-Timestamp': ts } : {}),
  });
  const cases: Array<[Record<string, string>, RegExp]> = [
    [headers(undefined, now), /missing X-Grafana-Alerting-Signature/],
    [headers(sign(now), undefined), /missing X-Grafana-Alerting-Timestamp/],
    [headers(sign(now, body, 'other-key'), now), /does not match/],
    [headers(sign(now, body.replace('High', 'Low')), now), /does not match/],
    [headers(sign(stale), stale), /stale signature/],
  ];
  for (const [h, re] of cases) {
    const res = await postJson(app, '/triggers/grafana', body, h);
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, re);
  }
  assert.equal(store.countEvents(), 0);
  const good = headers(sign(now), now);
  assert.equal((await postJson(app, '/triggers/grafana', body, good)).status, 200);
  const replay = await postJson(app, '/triggers/grafana', body, good);
  assert.equal(replay.status, 401);
  assert.match(((await replay.json()) as { error: { message: string } }).error.message, /replayed/);
});

test('Grafana HMAC: a signed request refused before it was stored (bad payload) can be sent again fixed; the signature is used up only with the stored events', async (t) => {
  const { app, store } = buildTestApp(t, { env: { GF_HMAC: 'hmac-secret' }, flags: { triggers: { grafana: { hmacSecretEnv: 'GF_HMAC' } } } });
  const now = String(Math.floor(Date.now() / 1000));
  const signed = (b: string) => ({ 'X-Grafana-Alerting-Signature': createHmac('sha256', 'hmac-secret').update(`${now}:${b}`).digest('hex'), 'X-Grafana-Alerting-Timestamp': now });
  const bad = JSON.stringify({ version: '1', alerts: 'not a list' });
  assert.equal((await postJson(app, '/triggers/grafana', bad, signed(bad))).status, 400);
  assert.equal((await postJson(app, '/triggers/grafana', bad, signed(bad))).status, 400, 'still the payload\'s 400, not a replay');
  const body = fixtureText('grafana', 'webhook_firing_docs.json');
  assert.equal((await postJson(app, '/triggers/grafana', body, signed(body))).status, 200);
  const stored = store.countEvents();
  assert.ok(stored > 0);
  assert.equal((await postJson(app, '/triggers/grafana', body, signed(body))).status, 401);
  assert.equal(store.countEvents(), stored);
});

// Review finding: the signature was checked over the body decoded as text, not over the
// bytes Grafana signs: a byte-order mark or a byte that is not UTF-8 (a custom payload
// template's) made a correctly signed delivery a 401, and Grafana does not resend it.
test('Grafana HMAC is over the bytes sent: a body with a byte-order mark or a byte that is not UTF-8 still verifies', async (t) => {
  const { app, store } = buildTestApp(t, { env: { GF_HMAC: 'hmac-secret' }, flags: { triggers: { grafana: { hmacSecretEnv: 'GF_HMAC' } } } });
  const now = String(Math.floor(Date.now() / 1000));
  const alert = (name: string, value: Buffer) =>
    Buffer.concat([Buffer.from(`{"version":"1","alerts":[{"labels":{"alertname":"${name}","host":"`), value, Buffer.from('"},"startsAt":"2026-11-21T10:00:00Z"}]}')]);
  const bodies: Array<[string, Buffer]> = [
    ['byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), alert('WithBom', Buffer.from('db1'))])],
    ['latin-1 byte', alert('Latin1Host', Buffer.from([0x64, 0x62, 0xe9]))],
  ];
  for (const [what, body] of bodies) {
    const sig = createHmac('sha256', 'hmac-secret').update(`${now}:`).update(body).digest('hex');
    const res = await app.request('/triggers/grafana', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Grafana-Alerting-Signature': sig, 'X-Grafana-Alerting-Timestamp': now },
      body,
    });
    assert.equal(res.status, 200, `${what}: ${await res.clone().text()}`);
    assert.equal(((await res.json()) as WebhookReply).accepted, 1, what);
  }
  assert.equal(store.countEvents(), 2);
});

test('alert times: an unreadable startsAt or endsAt refuses that alert by name (its retries would otherwise never dedupe); RFC 3339 forms pass', async (t) => {
  const { app, store } = buildTestApp(t);
  const alert = (name: string, times: Record<string, string>) => ({ labels: { alertname: name, service: 's' }, annotations: { message: `Error: ${name} broke` }, ...times });
  const res = await postJson(app, '/triggers/grafana', {
    version: '4',
    alerts: [
      alert('Good', { startsAt: '2026-11-21T10:00:00.123456789Z', endsAt: '0001-01-01T00:00:00Z' }),
      alert('Offset', { startsAt: '2026-11-21T11:00:00+01:00' }),
      alert('Words', { startsAt: 'yesterday-ish' }),
      alert('Zero', { startsAt: '0' }),
      alert('BadEnd', { status: 'resolved', startsAt: '2026-11-21T10:00:00Z', endsAt: 'garbage' }),
    ],
  });
  assert.equal(res.status, 200);
  const out = (await res.json()) as { accepted: number; rejected: Array<{ index: number; problem: string }> };
  assert.equal(out.accepted, 2);
  assert.deepEqual(out.rejected.map((r) => r.index), [2, 3, 4]);
  assert.match(out.rejected[0]!.problem, /^alerts\[2\]\.startsAt: expected an RFC 3339 time .*"yesterday-ish"/);
  assert.match(out.rejected[2]!.problem, /^alerts\[4\]\.endsAt:/);
  // The same delivery again: both stored alerts are recognised, nothing new.
  const again = (await (await postJson(app, '/triggers/grafana', { version: '4', alerts: [alert('Good', { startsAt: '2026-11-21T10:00:00.123456789Z' }), alert('Offset', { startsAt: '2026-11-21T11:00:00+01:00' })] })).json()) as { duplicates: number };
  assert.equal(again.duplicates, 2);
  assert.equal(store.countEvents(), 2);
});

test('an empty alert fingerprint is no fingerprint: two different alerts in one delivery are two events, not one and a duplicate', async (t) => {
  const { app, store } = buildTestApp(t);
  const res = await postJson(app, '/triggers/grafana', {
    version: '4',
    alerts: ['EmptyFp1', 'EmptyFp2'].map((name) => ({ labels: { alertname: name, service: name.toLowerCase() }, fingerprint: '', startsAt: '2026-11-21T10:00:00Z' })),
  });
  const out = (await res.json()) as { accepted: number; duplicates: number };
  assert.deepEqual([out.accepted, out.duplicates], [2, 0]);
  assert.equal(store.countEvents(), 2);
});

test('alerts known only by their rule name keep it whole: "Http5xxRate" and "DiskUsage90Percent" are two tickets, and one resolving does not resolve the other', async (t) => {
  const { app, store } = buildTestApp(t);
  const fire = (name: string, status = 'firing') =>
    postJson(app, '/triggers/grafana', { version: '4', alerts: [{ status, labels: { alertname: name, instance: 'db1' }, startsAt: '2026-11-21T09:00:00Z', ...(status === 'resolved' ? { endsAt: '2026-11-21T09:30:00Z' } : {}) }] });
  const a = ((await (await fire('DiskUsage90Percent')).json()) as { results: Array<{ ticket: number }> }).results[0]!.ticket;
  const b = ((await (await fire('Http5xxRate')).json()) as { results: Array<{ ticket: number }> }).results[0]!.ticket;
  assert.notEqual(a, b);
  const resolved = (await (await fire('Http5xxRate', 'resolved')).json()) as { results: Array<{ ticket: number; status: string }> };
  assert.equal(resolved.results[0]!.ticket, b);
  assert.equal(store.getTicket(a)!.state, 'settling', 'the disk alert is still open');
  // The same rule firing again with a message still normalises that message as before.
  const withMessage = (n: number) => postJson(app, '/triggers/grafana', { version: '4', alerts: [{ labels: { alertname: 'PetErrors', service: 'petstore' }, annotations: { message: `Pet ${n} not found` }, startsAt: `2026-11-21T09:0${n}:00Z` }] });
  const t1 = ((await (await withMessage(1)).json()) as { results: Array<{ ticket: number }> }).results[0]!.ticket;
  const t2 = ((await (await withMessage(2)).json()) as { results: Array<{ ticket: number }> }).results[0]!.ticket;
  assert.equal(t1, t2);
});

test('a version sent as a number is named as such, not as missing', async (t) => {
  const { app } = buildTestApp(t);
  const res = await postJson(app, '/triggers/grafana', { version: 4, alerts: [] });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /version: expected a string .* got number 4/);
});

// Review finding: a resolution was matched by a fingerprint of its own annotations, and
// Grafana resolves with other ones than it fired with: `annotations: {}`, only
// __dashboardUid__/__panelId__, or the figure rendered as "[no value]". The resolution
// found no ticket (or another one).
test("a resolution finds its alert's ticket by the firing alert (same fingerprint and startsAt), whatever annotations it resolves with", async (t) => {
  const { app, store } = buildTestApp(t);
  const labels = { __alert_rule_uid__: '_2dRVWEnk', alertname: 'MEMORY USED STARGAZE', service: 'stargaze' };
  const firing = { __dashboardUid__: 's38UsmEnz', __panelId__: '78', description: 'Memory used above 90% on stargaze (now 93.2%)' };
  // Recent times: intake takes older ones for now.
  const startsAt = new Date(Date.now() - 20 * 60_000).toISOString();
  const endsAt = new Date(Date.now() - 60_000).toISOString();
  const variants: Array<[string, string, Record<string, string>]> = [
    ['1', 'no annotations', {}],
    ['4', 'only the dashboard and panel', { __dashboardUid__: 's38UsmEnz', __panelId__: '78' }],
    ['1', 'the figure as [no value]', { ...firing, description: 'Memory used above 90% on stargaze (now [no value])' }],
    ['4', 'the figure as <no value>', { ...firing, description: 'Memory used above 90% on stargaze (now <no value>)' }],
  ];
  for (const [i, [version, what, resolvedWith]] of variants.entries()) {
    const fingerprint = `1463e12b33356c4${i}`;
    const alert = (status: string, annotations: Record<string, string>) => ({
      status,
      labels: { ...labels, instance: `host-${i}` },
      annotations,
      startsAt,
      endsAt: status === 'resolved' ? endsAt : '0001-01-01T00:00:00Z',
      fingerprint,
    });
    const fired = (await (await postJson(app, '/triggers/grafana', { version, status: 'firing', alerts: [alert('firing', firing)] })).json()) as WebhookReply;
    const ticket = fired.results[0]!.ticket!;
    const res = await postJson(app, '/triggers/grafana', { version, status: 'resolved', alerts: [alert('resolved', resolvedWith)] });
    const resolved = (await res.json()) as WebhookReply;
    assert.deepEqual([resolved.results[0]!.status, resolved.results[0]!.ticket], ['resolved', ticket], what);
    assert.equal(store.getTicket(ticket)!.alertResolvedAt, endsAt, what);
  }
  assert.equal(store.listTickets().length, 1, 'the four hosts fire one alert rule: one ticket');
});

// Review finding: one alert resolving marked a ticket resolved that another alert of it still
// fired on; that alert's repeats (duplicates) never cleared it.
test('Alertmanager fixtures: a ticket is resolved only once all of its alerts have, and one firing again reopens it', async (t) => {
  const { app, store } = buildTestApp(t);
  const firing = fixtureJson<{ alerts: Array<Record<string, unknown>> }>('alertmanager', 'webhook_firing_zulip.json');
  const resolvedOne = fixtureJson<{ alerts: Array<Record<string, unknown>> }>('alertmanager', 'webhook_resolved_zulip.json');
  const post = async (body: unknown) => (await (await postJson(app, '/triggers/grafana', body)).json()) as WebhookReply & { results: Array<{ reason?: string }> };
  const ticket = (await post(firing)).results[0]!.ticket!;
  const first = await post(resolvedOne);
  assert.deepEqual([first.results[0]!.ticket, first.results[0]!.reason], [ticket, 'alert resolved; other alerts of this ticket still fire']);
  assert.equal(store.getTicket(ticket)!.alertResolvedAt, null, 'c2ea85182f28cbd9 still fires');
  // The other's repeat (Alertmanager resends the firing alerts every repeat_interval): still firing.
  assert.equal((await post({ ...firing, alerts: [firing.alerts[1]] })).duplicates, 1);
  assert.equal(store.getTicket(ticket)!.alertResolvedAt, null);
  // The other alert resolves: the ticket is.
  const other = { ...resolvedOne, alerts: [{ ...firing.alerts[1]!, status: 'resolved', endsAt: '2020-02-06T00:32:58.432911368Z' }] };
  assert.equal((await post(other)).results[0]!.reason, 'alert resolved');
  assert.ok(store.getTicket(ticket)!.alertResolvedAt);
  // The same alert firing again (a repeat of the same delivery after a flap) reopens it.
  assert.equal((await post({ ...firing, alerts: [firing.alerts[1]] })).duplicates, 1);
  assert.equal(store.getTicket(ticket)!.alertResolvedAt, null);
});

// Review finding: the rule's name was ignored, and rules of one job whose messages differ
// only in their figure (or are a figure alone) merged into one ticket.
test('alerts of different rules that report figures are separate tickets; different rules that report one error are one', async (t) => {
  const { app, store } = buildTestApp(t);
  const alert = (alertname: string, annotations: Record<string, string>, fingerprint: string) => ({ status: 'firing', labels: { alertname, job: 'web' }, annotations, startsAt: '2026-11-21T10:00:00Z', fingerprint });
  const reply = (await (
    await postJson(app, '/triggers/grafana', {
      version: '4',
      alerts: [
        alert('CheckoutRequestsFailing', { summary: 'High failure rate', description: '12.5% of requests failed in the last 5m' }, 'ae00000000000001'),
        alert('LoginRequestsFailing', { summary: 'High failure rate', description: '3.1% of requests failed in the last 5m' }, 'ae00000000000002'),
        alert('DiskAlmostFull', { description: '93.2%' }, 'ae00000000000003'),
        alert('ReplicationLagHigh', { description: '412s' }, 'ae00000000000004'),
        alert('ApiErrors', { message: "TypeError: Cannot read properties of undefined (reading 'owner')" }, 'ae00000000000005'),
        alert('PetErrors', { message: "TypeError: Cannot read properties of undefined (reading 'owner')" }, 'ae00000000000006'),
      ],
    })
  ).json()) as WebhookReply;
  assert.deepEqual(reply.results.map((r) => r.status), ['created', 'created', 'created', 'created', 'created', 'merged']);
  assert.equal(store.listTickets().length, 5);
});

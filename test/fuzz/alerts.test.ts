// Property-based tests of the alert webhooks (issue 7, fuzzing): Grafana unified alerting
// (version "1") and Alertmanager (version "4") at POST /triggers/grafana, and the latency
// endpoint's two shapes at POST /triggers/latency. Inputs are the shared fixtures with
// random mutations, and plain junk: no 5xx ever, and a 4xx names the field it refuses.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseAlertWebhook } from '../../control/triggers/alerts.ts';
import { buildTestApp, fixtureJson, postJson } from '../support/helpers.ts';
import { assertNamesProblem, cutSurrogate, expectNo5xx, hostileText, junkValue, mutated, RUNS } from './arbitraries.ts';

const FIXTURES: Array<[string, string]> = [
  ['grafana', 'webhook_firing_docs.json'],
  ['grafana', 'webhook_firing_values_v11_zulip.json'],
  ['grafana', 'webhook_default_payload_alerting_test.json'],
  ['grafana', 'webhook_mixed_firing_resolved_v9_zulip.json'],
  ['grafana', 'webhook_resolved_v9_zulip.json'],
  ['alertmanager', 'webhook_firing_zulip.json'],
  ['alertmanager', 'webhook_resolved_zulip.json'],
  ['alertmanager', 'webhook_firing_prometheus_msteams_testdata.json'],
];
const bases = FIXTURES.map(([dir, name]) => fixtureJson(dir, name));

/** What a replaced whole body may be refused for lacking. */
const ALERT_REQUIRED = ['version', 'alerts'];
const LATENCY_JSON = { service: 'petstore', route: 'GET /api/pets', p95_ms: 1840, threshold_ms: 500, id: 'lat-1', observed_at: '2026-11-21T09:00:00Z' };

interface Reply {
  accepted: number;
  duplicates: number;
  results: unknown[];
  rejected: Array<{ index: number; problem: string }>;
  ignored?: Array<{ index: number; reason: string }>;
}

const mutatedAlert = fc.nat({ max: bases.length - 1 }).chain((i) => mutated(bases[i]));

test('POST /triggers/grafana: mutated Grafana and Alertmanager fixtures → 2xx or a 4xx naming the field', async (t) => {
  const { app, store } = buildTestApp(t);
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(mutatedAlert, async (m) => {
      const before = store.countEvents();
      const res = await postJson(app, '/triggers/grafana', JSON.stringify(m.value));
      const { status, body } = await expectNo5xx(res, 'grafana');
      assertNamesProblem(status, body, m.paths, 'grafana', ALERT_REQUIRED);
      if (status >= 400) {
        assert.equal(store.countEvents(), before, 'a refused webhook stores nothing');
        return;
      }
      const reply = body as Reply;
      // Every alert is answered, set aside (Grafana's test notification) or listed as rejected with the field that was wrong.
      const alerts = (m.value as { alerts: unknown[] }).alerts;
      assert.equal(reply.results.length + reply.rejected.length + (reply.ignored ?? []).length, alerts.length);
      for (const r of reply.rejected) assert.match(r.problem, new RegExp(`^alerts\\[${r.index}\\]`));
      accepted++;
    }),
    { numRuns: RUNS.http },
  );
  // Refusing every webhook would pass every run above: the accepted replies' checks must have run.
  assert.ok(accepted >= 30, `only ${accepted} of ${RUNS.http} mutated webhooks were accepted`);
});

test('POST /triggers/grafana: any JSON value or text → no 5xx, 4xx with a message', async (t) => {
  const { app } = buildTestApp(t);
  const anyBody = fc.oneof(
    junkValue.map((v) => JSON.stringify(v)),
    hostileText,
    fc.record({ version: fc.oneof(fc.constantFrom('1', '4'), junkValue), alerts: fc.array(junkValue, { maxLength: 4 }), status: junkValue }).map((v) => JSON.stringify(v)),
  );
  await fc.assert(
    fc.asyncProperty(anyBody, async (text) => {
      const { status } = await expectNo5xx(await postJson(app, '/triggers/grafana', text), 'grafana');
      assert.ok(status === 200 || status === 400 || status === 413, `unexpected ${status}`);
    }),
    { numRuns: RUNS.http },
  );
});

test('POST /triggers/latency: mutated alert webhooks and small JSON bodies → 2xx or a 4xx naming the field', async (t) => {
  const { app } = buildTestApp(t);
  const body = fc.oneof(mutatedAlert, mutated(LATENCY_JSON));
  await fc.assert(
    fc.asyncProperty(body, async (m) => {
      const res = await postJson(app, '/triggers/latency', JSON.stringify(m.value));
      const { status, body: reply } = await expectNo5xx(res, 'latency');
      assertNamesProblem(status, reply, m.paths, 'latency', [...ALERT_REQUIRED, 'service', 'route', 'p95_ms', 'threshold_ms']);
    }),
    { numRuns: RUNS.http },
  );
});

test('regression (issue 7): an alert webhook without "alerts" at /triggers/latency names "alerts"', async (t) => {
  const { app } = buildTestApp(t);
  // Shrunk counterexample: the alert fixture with `alerts` dropped was read as the small
  // latency shape and refused for lacking service/route, never mentioning alerts.
  const { alerts: _alerts, ...rest } = bases[0] as Record<string, unknown>;
  const res = await postJson(app, '/triggers/latency', rest);
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /alerts: expected an array/);
});

test('parseAlertWebhook: hostile label and annotation text → bounded, well-formed, stable events', () => {
  const text = fc.oneof(hostileText, fc.constantFrom('x'.repeat(299) + '💥', '0001-01-01T00:00:00Z', 'not a date', '2026-13-45T99:99:99Z'));
  const strings = fc.dictionary(fc.oneof(fc.constantFrom('alertname', 'summary', 'message', 'service', 'route', 'method', 'stack', 'count', 'p95_ms', 'threshold_ms', 'kind'), fc.string({ maxLength: 8 })), text, { maxKeys: 6 });
  const alert = fc.record(
    {
      status: fc.constantFrom('firing', 'resolved'),
      labels: strings,
      annotations: strings,
      startsAt: text,
      endsAt: text,
      fingerprint: text,
      values: fc.dictionary(fc.constantFrom('count', 'p95_ms', 'p95', 'A', 'B'), fc.oneof(fc.double(), fc.constant(null))),
    },
    { requiredKeys: ['labels'] },
  );
  const opts = { latencyPattern: /latency|p95/i, defaultThresholdMs: 1000, now: () => new Date('2026-11-21T10:00:00Z') };
  let parsed = 0;
  fc.assert(
    fc.property(fc.constantFrom('1', '4'), fc.array(alert, { minLength: 1, maxLength: 3 }), fc.boolean(), (version, alerts, forceLatency) => {
      const body = { version, alerts };
      let a: ReturnType<typeof parseAlertWebhook>;
      try {
        a = parseAlertWebhook(body, { ...opts, forceLatency });
      } catch (err) {
        // Every alert refused (e.g. an unreadable startsAt): a 400 that names each problem.
        assert.equal((err as { status?: number }).status, 400, String(err));
        assert.match((err as Error).message, /^invalid alert webhook: no valid alerts \(alerts\[0\][.:]/);
        return;
      }
      assert.deepEqual(parseAlertWebhook(body, { ...opts, forceLatency }), a, 'deterministic');
      assert.equal(a.events.length + a.rejected.length + a.ignored.length, alerts.length);
      for (const r of a.rejected) assert.match(r.problem, new RegExp(`^alerts\\[${r.index}\\][.:]`), 'a refusal names its alert');
      for (const ev of a.events) {
        assert.ok(ev.title.length <= 300, 'title bounded');
        assert.ok(!ev.title.includes('\n'), 'title is one line');
        assert.ok(!cutSurrogate(ev.title, body), `title cut inside a character: ${JSON.stringify(ev.title.slice(-3))}`);
        assert.ok(Number.isFinite(Date.parse(ev.firstSeen)) && Number.isFinite(Date.parse(ev.lastSeen)), 'times are dates');
        assert.ok(Number.isInteger(ev.count) && ev.count >= 1 && ev.count <= 1e9, `count ${ev.count}`);
        if (ev.latency) assert.ok(Number.isFinite(ev.latency.p95Ms) && Number.isFinite(ev.latency.thresholdMs), 'latency numbers are finite');
      }
      parsed += a.events.length;
    }),
    { numRuns: RUNS.pure },
  );
  // Refusing every alert would pass every run above: the events' checks must have run.
  assert.ok(parsed >= 15, `only ${parsed} events came of ${RUNS.pure} webhooks`);
});

test('regression (issue 7): a 300-character alert title never ends on half an emoji', () => {
  // Shrunk counterexample: alertname "x" × 299 + "💥" gave a title ending in "\ud83d".
  const { events } = parseAlertWebhook(
    { version: '1', alerts: [{ labels: { alertname: `${'x'.repeat(299)}💥` } }] },
    { latencyPattern: /latency/, defaultThresholdMs: 1000, now: () => new Date('2026-11-21T10:00:00Z') },
  );
  assert.equal(events[0]!.title, 'x'.repeat(299));
});

test('POST /triggers/grafana with HMAC: signed mutations reach the parser; unsigned, forged and tampered ones are 401 and store nothing', async (t) => {
  const key = 'grafana-hmac-secret';
  const { app, store } = buildTestApp(t, { env: { GF_HMAC: key }, flags: { triggers: { grafana: { hmacSecretEnv: 'GF_HMAC' } } } });
  const sign = (ts: string, body: string, k = key) => createHmac('sha256', k).update(`${ts}:${body}`).digest('hex');
  const headers = (sig: string | undefined, ts: string | undefined): Record<string, string> => ({
    ...(sig === undefined ? {} : { 'X-Grafana-Alerting-Signature': sig }),
    ...(ts === undefined ? {} : { 'X-Grafana-Alerting-Timestamp': ts }),
  });
  const forgery = fc.constantFrom('unsigned', 'no-timestamp', 'wrong-key', 'tampered', 'stale', 'garbage');
  let n = 0;
  await fc.assert(
    fc.asyncProperty(mutatedAlert, forgery, hostileText, async (m, how, garbage) => {
      // A distinct body per run: the signature of an accepted one is remembered against replay.
      const body = JSON.stringify({ ...(m.value as object), run: n++ });
      const now = String(Math.floor(Date.now() / 1000));
      const stale = String(Math.floor(Date.now() / 1000) - 3600);
      const before = store.countEvents();
      const forged = {
        unsigned: headers(undefined, now),
        'no-timestamp': headers(sign(now, body), undefined),
        'wrong-key': headers(sign(now, body, 'not-the-key'), now),
        tampered: headers(sign(now, `${body} `), now),
        stale: headers(sign(stale, body), stale),
        garbage: headers(garbage.replace(/[^\x20-\x7e]/g, ''), now),
      }[how];
      const refused = await postJson(app, '/triggers/grafana', body, forged);
      assert.equal(refused.status, 401, `${how}: ${await refused.clone().text()}`);
      assert.equal(store.countEvents(), before, 'nothing stored');
      const signed = await postJson(app, '/triggers/grafana', body, headers(sign(now, body), now));
      const { status, body: reply } = await expectNo5xx(signed, 'signed grafana');
      assert.notEqual(status, 401, 'a correctly signed body is admitted');
      if (m.value !== null && typeof m.value === 'object' && !Array.isArray(m.value)) assertNamesProblem(status, reply, m.paths, 'signed grafana', ALERT_REQUIRED);
    }),
    { numRuns: RUNS.httpSlow },
  );
});

// The latency trigger's reading of alert figures and its event ids (review findings on
// POST /triggers/latency).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderBrief } from '../../control/dispatcher/brief.ts';
import { buildTestApp, postJson, repoRoot } from '../support/helpers.ts';

interface Reply {
  accepted: number;
  duplicates: number;
  results: Array<{ id: string; status: string; ticket: number | null }>;
}

// Review finding: a value under the firing threshold with no unit (450 under threshold_ms
// 500) was read as seconds: a P95 of 450,000 ms in the brief.
test('an Alertmanager latency value with no unit is read as seconds only when that is plausible; otherwise its unit is unknown and the brief says none', async (t) => {
  const { app, store } = buildTestApp(t);
  let n = 0;
  const alert = (route: string, value: string, labels: Record<string, string> = { threshold_ms: '500' }) => ({
    status: 'firing',
    labels: { alertname: 'HighP95', service: 'pets', route, ...labels },
    annotations: { summary: 'P95 high', value },
    startsAt: '2026-11-21T10:00:00Z',
    fingerprint: `ff0000000000000${++n}`,
  });
  const res = await postJson(app, '/triggers/latency', {
    version: '4',
    status: 'firing',
    alerts: [
      alert('/api/pets', '0.8'), // 800 ms: seconds, well under a tenth of 500
      alert('/api/orders', '1.2'),
      alert('/api/users', '450'), // just under 500: 450 ms or 450 s? Unknown.
      alert('/api/carts', '0.04'), // 40 ms as seconds: under the threshold, so not seconds either
      alert('/api/search', '90000', { threshold_ms: '1000000' }), // 90,000 s is over a day
      alert('/api/login', '730'), // over the threshold: milliseconds
    ],
  });
  assert.equal(res.status, 200, await res.clone().text());
  const p95 = (route: string) => store.listTickets().find((x) => x.route === route)!.labels.p95_ms;
  assert.equal(p95('/api/pets'), '800');
  assert.equal(p95('/api/orders'), '1200');
  assert.equal(p95('/api/users'), undefined, 'not 450000');
  assert.equal(p95('/api/carts'), undefined);
  assert.equal(p95('/api/search'), undefined);
  assert.equal(p95('/api/login'), '730');
  const users = store.listTickets().find((x) => x.route === '/api/users')!;
  assert.match(renderBrief(join(repoRoot, 'prompts'), users), /\| P95 \/ threshold \| - \|/);
});

// Review finding: the small JSON body's id was built from the raw route (and a caller's raw
// `id`): `GET /reset?token=tok_live_...` was stored in events.source_event_id and echoed.
test('latency measurements: the event id is a hash of its parts, never their text; a retry is still recognised', async (t) => {
  const { app, store } = buildTestApp(t);
  const secret = 'tok_live_9f8e7d6c5b4a3f2e1d0cAB12';
  const body = { service: 'api', route: `GET /reset?token=${secret}`, p95_ms: 1840, threshold_ms: 500 };
  const send = async (b: Record<string, unknown>) => (await (await postJson(app, '/triggers/latency', b)).json()) as Reply;
  const bodies = [{ ...body, observed_at: '2026-11-21T09:59:00Z' }, { ...body, id: `m-${secret}` }, body];
  for (const b of bodies) {
    const first = await send(b);
    assert.equal(first.accepted, 1);
    assert.ok(!JSON.stringify(first).includes('tok_live'), JSON.stringify(first));
    assert.equal((await send(b)).duplicates, 1, 'a retry is the same delivery');
  }
  const ids = store.eventIdsBySource('latency');
  assert.equal(ids.length, 3);
  for (const id of ids) assert.match(id, /^latency-(id|at|retry):[0-9a-f]{32}$/);
  const raw = JSON.stringify(store.db.prepare('SELECT source_event_id FROM events').all());
  assert.ok(!raw.includes('tok_live') && !raw.includes('/reset'), raw);
});

test("alert webhooks: an alert's own fingerprint is kept only in Grafana's and Alertmanager's form; anything else in it is hashed", async (t) => {
  const { app, store } = buildTestApp(t);
  const secret = 'tok_live_9f8e7d6c5b4a3f2e1d0cAB12';
  const alert = (fingerprint: string | undefined, route: string) => ({
    status: 'firing',
    labels: { alertname: 'DbErrors', service: 'billing', route },
    annotations: { message: 'Error: connection refused' },
    startsAt: '2026-11-21T10:00:00Z',
    ...(fingerprint === undefined ? {} : { fingerprint }),
  });
  const reply = (await (
    await postJson(app, '/triggers/grafana', { version: '4', alerts: [alert('dd11dd11dd11dd11', '/a'), alert(`fp-${secret}`, '/b'), alert(undefined, `/api/reset?token=${secret}`)] })
  ).json()) as Reply;
  assert.equal(reply.accepted, 3);
  assert.equal(reply.results[0]!.id, 'dd11dd11dd11dd11:2026-11-21T10:00:00.000Z');
  assert.ok(!JSON.stringify(reply).includes('tok_live'), JSON.stringify(reply));
  assert.ok(!store.eventIdsBySource('alertmanager').some((id) => id.includes('tok_live')));
});

// Intake's writer thread (control/intake/writer.ts): what `bugbot start` stores webhooks
// with. It must answer exactly as intake on the HTTP thread does, acknowledge only what
// it committed, and lose nothing acknowledged when the thread goes away.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createApp } from '../../control/app.ts';
import { HttpError } from '../../control/http-error.ts';
import { ReplayError } from '../../control/intake/index.ts';
import { IntakeWriter } from '../../control/intake/writer.ts';
import { createLogger, silentLogger } from '../../control/log.ts';
import { openServices } from '../../control/services.ts';
import type { TriggerEvent } from '../../control/types.ts';
import { alertEvent, fixtureJson, fixtureText, postJson, tempDir, testConfig, waitFor } from '../support/helpers.ts';

function services(t: TestContext, writerThread: boolean) {
  const home = tempDir(t);
  const config = testConfig(home, {}, { BUGBOT_HASH_SALT: 'writer-test' });
  const s = openServices(config, silentLogger, { writerThread });
  t.after(async () => {
    await s.writer?.close();
    s.store.close();
  });
  const app = createApp({ config, store: s.store, intake: s.intake, logger: silentLogger });
  return { ...s, app, writer: s.writer as IntakeWriter };
}

/** Alert n of one error: its id, pet id and message differ, its fingerprint does not. */
function event(n: number, overrides: Partial<TriggerEvent> = {}): TriggerEvent {
  return alertEvent({
    message: `TypeError: Cannot read properties of undefined (reading 'owner') for pet ${n}`,
    route: `GET /api/pets/${n}`,
    sourceEventId: `writer-test-${n}`,
    ...overrides,
  });
}

test('alert webhooks stored on the writer thread get the same replies as on the HTTP thread', async (t) => {
  const inline = services(t, false);
  const threaded = services(t, true);
  assert.equal(inline.writer, null);
  assert.ok(threaded.writer, 'openServices({ writerThread: true }) starts a writer');
  // Each request the threaded app stores goes through its writer (counted; it still does the
  // work): otherwise both apps would store on this thread and agree trivially.
  let viaWriter = 0;
  const submit = threaded.writer.submit.bind(threaded.writer);
  const submitAlerts = threaded.writer.submitAlerts.bind(threaded.writer);
  threaded.writer.submit = (...args) => (viaWriter++, submit(...args));
  threaded.writer.submitAlerts = (...args) => (viaWriter++, submitAlerts(...args));
  let stored = 0;

  const grafana = (name: string) => fixtureText('grafana', name);
  const docs = fixtureJson<{ alerts: Array<Record<string, unknown>> }>('grafana', 'webhook_firing_docs.json');
  const bodies: Array<[string, string]> = [
    ['grafana firing', grafana('webhook_firing_docs.json')],
    ['grafana values', grafana('webhook_firing_values_v11_zulip.json')],
    ['grafana mixed', grafana('webhook_mixed_firing_resolved_v9_zulip.json')],
    ['grafana resolved', grafana('webhook_resolved_v9_zulip.json')],
    ['alertmanager firing', fixtureText('alertmanager', 'webhook_firing_zulip.json')],
    ['the same again (duplicates)', grafana('webhook_firing_docs.json')],
    ['one bad alert in the batch', JSON.stringify({ ...docs, alerts: [{ ...docs.alerts[0], fingerprint: 'other' }, { status: 'firing' }] })],
    ['not JSON', '{"version": "1", alerts: ['],
    ['empty', '  '],
    ['no alerts array', JSON.stringify({ version: '1' })],
    ['unknown version', JSON.stringify({ version: '7', alerts: [] })],
    ['every alert bad', JSON.stringify({ version: '4', alerts: [{ labels: 'x' }] })],
    ['a version nested too deep to print', `{"version": ${'['.repeat(100_000)}${']'.repeat(100_000)}, "alerts": []}`],
  ];
  const requests: Array<[string, string, string, Record<string, string>?]> = bodies.map(([what, body]) => [what, '/triggers/grafana', body]);
  // Events parsed on the HTTP thread go over as events (a manual ticket with its classification).
  requests.push(
    ['latency, small shape', '/triggers/latency', JSON.stringify({ service: 'petstore', route: 'GET /api/pets', p95_ms: 1840, threshold_ms: 500, observed_at: new Date().toISOString() })],
    ['latency, alert webhook', '/triggers/latency', grafana('webhook_firing_values_v11_zulip.json')],
    ['manual ticket', '/api/tickets', JSON.stringify({ title: 'Invoice PDF is blank', message: 'Customers get an empty PDF', service: 'billing' }), { 'idempotency-key': 'k1' }],
    ['manual ticket again', '/api/tickets', JSON.stringify({ title: 'Invoice PDF is blank', message: 'Customers get an empty PDF', service: 'billing' }), { 'idempotency-key': 'k1' }],
  );
  for (const [what, path, body, headers] of requests) {
    const a = await postJson(inline.app, path, body, headers);
    const b = await postJson(threaded.app, path, body, headers);
    const [ja, jb] = [await a.json(), await b.json()];
    assert.equal(b.status, a.status, `${what}: status`);
    if (b.status < 300) stored++;
    // When each store received it differs (manual tickets are seen when filed); nothing else does.
    const strip = (x: unknown) => JSON.parse(JSON.stringify(x, (k, v: unknown) => (/^(created_at|updated_at|createdAt|updatedAt|received_at|receivedAt|firstSeen|lastSeen|first_seen|last_seen)$/.test(k) ? undefined : v)));
    assert.deepEqual(strip(jb), strip(ja), `${what}: reply`);
  }
  assert.ok(stored > 0 && viaWriter >= stored, `${stored} request(s) stored, ${viaWriter} through the writer thread`);
  // And the same rows: tickets, events, what triage decided.
  const rows = (s: ReturnType<typeof services>) => ({
    tickets: s.store.db.prepare('SELECT fingerprint, kind, state, count, title, message, classification, triage_reason FROM tickets ORDER BY id').all(),
    events: s.store.db.prepare('SELECT source, source_event_id, fingerprint, ticket_id, status FROM events ORDER BY id').all(),
  });
  const [ra, rb] = [rows(inline), rows(threaded)];
  assert.ok(ra.tickets.length >= 3, `tickets were made (${ra.tickets.length})`);
  assert.deepEqual(rb, ra);
});

test('group commit: a storm of concurrent requests all commit, one ticket counts them all', async (t) => {
  const { writer, store } = services(t, true);
  const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => writer.submit([event(i)], {})));
  assert.equal(replies.length, 300);
  assert.deepEqual(new Set(replies.map(([r]) => r!.ticketId)).size, 1, 'one ticket');
  assert.equal(replies.filter(([r]) => r!.status === 'created').length, 1);
  assert.equal(store.countEvents(), 300);
  assert.equal(store.listTickets()[0]!.count, 300);
  // Acknowledged means committed: a fresh connection (another process) sees every one.
  const again = await writer.submit([event(7)], {});
  assert.equal(again[0]!.status, 'duplicate', 'the idempotency key was committed');
});

test('a webhook the writer cannot take is refused alone (400, a short reason); the requests sharing its transaction commit', async (t) => {
  const { writer, store } = services(t, true);
  const good = (n: number) => JSON.stringify({ version: '4', alerts: [{ status: 'firing', labels: { alertname: 'Shared' }, annotations: { message: `TypeError: shared batch ${n}` }, startsAt: new Date(Date.UTC(2026, 0, 1) + n).toISOString(), fingerprint: `batch-${n}` }] });
  // A version JSON.stringify cannot print once failed the whole transaction with a 500.
  const bad = `{"version": ${'['.repeat(100_000)}${']'.repeat(100_000)}, "alerts": []}`;
  const replies = await Promise.allSettled([good(1), bad, good(2), good(3)].map((text) => writer.submitAlerts({ text, latency: false }, {})));
  assert.deepEqual(replies.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  const err = (replies[1] as PromiseRejectedResult).reason as HttpError;
  assert.ok(err instanceof HttpError);
  assert.equal(err.status, 400);
  assert.match(err.message, /^invalid alert webhook: version: expected a string .*, got object \[\.\.\.\]$/);
  assert.ok(err.message.length < 200, `the sender's value is cut short in the reason (${err.message.length} characters)`);
  assert.equal(store.countEvents(), 3);
});

test("a fault of bugbot's with one request's events fails that request alone, logged with the thread's stack; the requests sharing its transaction commit", async (t) => {
  const { writer, store } = services(t, true);
  await writer.start();
  // No trigger makes such an event (labels are parsed into an object): it stands for a bug
  // in redaction or fingerprinting that one sender's payload runs into. It once failed
  // every request of its transaction, each time the sender sent it again.
  const replies = await Promise.allSettled([writer.submit([event(1)], {}), writer.submit([event(2, { labels: null as never })], {}), writer.submit([event(3)], {})]);
  assert.deepEqual(replies.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  const err = (replies[1] as PromiseRejectedResult).reason as Error;
  assert.ok(!(err instanceof HttpError), 'a 500 (unhandled error, logged with its stack), not a refusal of the sender');
  assert.match(err.stack ?? '', /^TypeError: .*null[^]*\n\s+at redactEvent /, "the stack is where it was thrown on the thread, not where this thread read the reply");
  assert.equal(store.countEvents(), 2);
  assert.equal(store.eventExists('grafana', 'writer-test-2'), false);
});

test('a replayed one-time value is refused and stores nothing; other requests in the batch are unaffected', async (t) => {
  const { writer, store } = services(t, true);
  const nonce = { scope: 'grafana-signature', value: 'sig-1', keepSeconds: 300 };
  const [first, replay, other] = await Promise.allSettled([
    writer.submit([event(1)], { nonce }),
    writer.submit([event(2)], { nonce }),
    writer.submit([event(3)], {}),
  ]);
  assert.equal(first.status, 'fulfilled');
  assert.equal(replay.status, 'rejected');
  assert.ok((replay as PromiseRejectedResult).reason instanceof ReplayError);
  assert.equal(other.status, 'fulfilled');
  assert.equal(store.countEvents(), 2, 'the replay stored nothing');
  assert.equal(store.eventExists('grafana', 'writer-test-2'), false);
});

test('a writer thread that dies fails what it held (nothing acknowledged), and the next request gets a new one', async (t) => {
  const { writer, store } = services(t, true);
  await writer.submit([event(1)], {});
  // Kill the thread while a batch is on its way to it.
  const held = writer.submit([event(2)], {});
  await new Promise((r) => setImmediate(r));
  const w = (writer as unknown as { worker: { terminate(): Promise<number>; removeAllListeners(e: string): void } }).worker;
  // The batch is posted; the thread dies before its answer is read (a busy machine could
  // otherwise deliver the answer before the kill, and the test would race).
  w.removeAllListeners('message');
  await w.terminate();
  await assert.rejects(held, (err: Error & { status?: number }) => err.status === 503 && /writer thread stopped/.test(err.message));
  // Whatever the thread had done with it, the sender was told it failed; a retry is safe.
  const retried = await writer.submit([event(2)], {});
  assert.ok(['created', 'merged', 'duplicate'].includes(retried[0]!.status));
  const next = await writer.submit([event(3)], {});
  assert.equal(next[0]!.status, 'merged');
  assert.equal(store.eventExists('grafana', 'writer-test-3'), true);
});

test('a writer thread that dies under a storm: every webhook it held gets a 503 to send again, and the log says so in two lines, not one per request', async (t) => {
  const home = tempDir(t);
  const config = testConfig(home, {}, { BUGBOT_HASH_SALT: 'writer-test' });
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', write: (l) => lines.push(l) });
  const { store, intake, writer } = openServices(config, logger, { writerThread: true });
  t.after(async () => {
    await writer?.close();
    store.close();
  });
  const app = createApp({ config, store, intake, logger });
  await writer!.start();
  // The thread's answers are not read (as in the test above): the requests stay in it until it dies.
  const w = (writer as unknown as { worker: { terminate(): Promise<number>; removeAllListeners(e: string): void } }).worker;
  w.removeAllListeners('message');
  const docs = fixtureJson<{ alerts: Array<Record<string, unknown>> }>('grafana', 'webhook_firing_docs.json');
  const storm = Array.from({ length: 40 }, (_, i) => postJson(app, '/triggers/grafana', { ...docs, alerts: [{ ...docs.alerts[0], fingerprint: `storm-${i}` }] }));
  await waitFor(() => writer!.inFlightCount === 40 && (writer as unknown as { pending: unknown[] }).pending.length === 0, 10_000, 'the storm held in the thread');
  await w.terminate();
  const replies = await Promise.all(storm);
  assert.deepEqual([...new Set(replies.map((r) => r.status))], [503]);
  assert.equal(((await replies[0]!.json()) as { error: { code: string } }).error.code, 'unavailable');
  const errors = lines.filter((l) => l.includes('"level":"error"'));
  assert.equal(errors.length, 2, errors.join('\n'));
  assert.match(errors[0]!, /"msg":"intake writer thread stopped".*"requests":40/);
  assert.match(errors[1]!, /"msg":"request failed".*writer thread stopped.*"refused":1/);

  // A monitor asking now: the process lives (/healthz 200, saying intake failed), but
  // events sent now were refused (/readyz 503) until one is stored again.
  const health = (await (await app.request('/healthz')).json()) as { ok: boolean; intake: { ok: boolean; refused?: number; error?: { code: string } } };
  assert.equal(health.ok, true);
  assert.equal(health.intake.ok, false);
  assert.equal(health.intake.refused, 40);
  assert.equal(health.intake.error?.code, 'unavailable');
  const ready = await app.request('/readyz');
  assert.equal(ready.status, 503);
  assert.match(((await ready.json()) as { error: { message: string } }).error.message, /writer thread stopped/);
  const stored = await postJson(app, '/triggers/grafana', { ...docs, alerts: [{ ...docs.alerts[0], fingerprint: 'after-the-storm' }] });
  assert.equal(stored.status, 200, await stored.text());
  assert.deepEqual(await (await app.request('/readyz')).json(), { ready: true });
  assert.deepEqual(((await (await app.request('/healthz')).json()) as { intake: unknown }).intake, { ok: true });
});

test('close() lets submitted requests commit before the thread stops; later ones are refused', async (t) => {
  const { writer, store } = services(t, true);
  const pending = Array.from({ length: 20 }, (_, i) => writer.submit([event(i)], {}));
  await writer.close();
  const results = await Promise.all(pending);
  assert.equal(results.length, 20);
  assert.equal(store.countEvents(), 20);
  await assert.rejects(writer.submit([event(99)], {}), (err: unknown) => {
    assert.ok(err instanceof HttpError && err.status === 503, 'a 503 (send it again), not a 500');
    assert.match(err.message, /shutting down/);
    return true;
  });
});

test("the thread's SQLite errors keep their code: the webhook's reply says busy (503), as on the HTTP thread", async (t) => {
  const { app, store, writer } = services(t, true);
  await writer.start();
  // Another writer holds the database longer than the busy timeout (5 s).
  store.db.exec('BEGIN IMMEDIATE');
  let res: Response;
  try {
    res = await postJson(app, '/triggers/grafana', fixtureText('grafana', 'webhook_firing_docs.json'));
  } finally {
    store.db.exec('COMMIT');
  }
  assert.equal(res.status, 503, await res.clone().text());
  assert.equal(res.headers.get('retry-after'), '1');
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'busy');
  assert.equal(store.countEvents(), 0, 'nothing stored');
  const again = await postJson(app, '/triggers/grafana', fixtureText('grafana', 'webhook_firing_docs.json'));
  assert.equal(again.status, 200);
});

test('a writer thread that cannot open the store: start() says why (bugbot start fails instead of listening)', async (t) => {
  const home = tempDir(t);
  const { secrets: _secrets, ...config } = testConfig(home);
  // A file where the store's folder should be.
  writeFileSync(join(home, 'not-a-dir'), '');
  const writer = new IntakeWriter({ dbPath: join(home, 'not-a-dir', 'bugbot.db'), config, salt: undefined, maskedValues: [] });
  t.after(() => writer.close());
  await assert.rejects(writer.start(), /intake's writer thread did not start: .*(EEXIST|ENOTDIR)/);
  await assert.rejects(writer.submit([event(1)], {}), (err: Error & { status?: number }) => err.status === 503);
});

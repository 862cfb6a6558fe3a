// Property-based tests of the manual ticket API, POST /api/tickets (issue 7, fuzzing):
// a valid ticket with random mutations → 201/200 or a 400 naming the field; any other
// body → no 5xx; what is stored keeps the promises parseManual makes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseManual } from '../../control/triggers/manual.ts';
import { buildTestApp, postJson } from '../support/helpers.ts';
import { assertNamesProblem, cutSurrogate, expectNo5xx, hostileText, junkValue, mutated, RUNS } from './arbitraries.ts';

const TICKET = {
  title: 'Checkout page goes blank after paying',
  message: 'TypeError: Cannot read properties of undefined (reading "total")',
  service: 'petstore',
  route: 'POST /api/checkout/42',
  stack: 'TypeError: x\n    at pay (/srv/app/src/checkout.ts:41:12)',
  kind: 'error',
  labels: { env: 'staging', team: 'payments' },
  filed_by: 'dana',
};

interface Reply {
  status: string;
  ticket?: { id: number; title: string; message: string };
}

test('POST /api/tickets: mutated tickets → 201/200 or a 400 naming the field', async (t) => {
  const { app, store } = buildTestApp(t);
  let n = 0;
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(mutated(TICKET), async (m) => {
      const before = store.countEvents();
      const res = await postJson(app, '/api/tickets', JSON.stringify(m.value), { 'idempotency-key': `fuzz-${n++}` });
      const { status, body } = await expectNo5xx(res, 'api');
      assertNamesProblem(status, body, m.paths, 'api', ['title']);
      if (status >= 400) {
        assert.equal(status, 400);
        assert.equal(store.countEvents(), before, 'a refused ticket stores nothing');
        return;
      }
      const reply = body as Reply;
      assert.ok(status === 201 || status === 200, `status ${status}`);
      assert.ok(reply.ticket, 'the reply carries the ticket');
      assert.ok(!reply.ticket.title.includes('\n'), 'the title is one line');
      accepted++;
    }),
    { numRuns: RUNS.http },
  );
  // Refusing everything would pass every run above: the accepted tickets' checks must have run.
  assert.ok(accepted >= 20, `only ${accepted} of ${RUNS.http} mutated tickets were accepted`);
});

test('POST /api/tickets: any JSON value, text or content type → no 5xx, a 4xx with a message', async (t) => {
  const { app } = buildTestApp(t);
  const anyBody = fc.oneof(junkValue.map((v) => JSON.stringify(v)), hostileText, fc.constant(''), fc.constant('{"title": "x",'));
  const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', '');
  await fc.assert(
    fc.asyncProperty(anyBody, contentType, async (text, type) => {
      const res = await app.request('/api/tickets', { method: 'POST', headers: type ? { 'content-type': type } : {}, body: text });
      const { status, body } = await expectNo5xx(res, 'api');
      if (status >= 400) {
        assert.ok([400, 413, 415].includes(status), `status ${status}`);
        assert.match((body as { error: { message: string } }).error.message, /invalid ticket|JSON|empty body|content-type|exceeds/);
      }
    }),
    { numRuns: RUNS.http },
  );
});

test('parseManual: accepted input → a one-line bounded title, the same event for the same idempotency key', () => {
  const input = fc.record(
    {
      title: fc.oneof(hostileText, fc.constantFrom(`${'x'.repeat(299)}💥`, ' a\nb ', '\n\nfirst\nsecond')),
      message: hostileText,
      service: hostileText,
      route: hostileText,
      stack: hostileText,
      kind: fc.constantFrom('error', 'latency', 'report'),
      labels: fc.dictionary(fc.string({ maxLength: 10 }), hostileText, { maxKeys: 4 }),
      filed_by: hostileText,
    },
    { requiredKeys: ['title'] },
  );
  const now = new Date('2026-11-21T10:00:00Z');
  let accepted = 0;
  fc.assert(
    fc.property(input, fc.string({ minLength: 1, maxLength: 20 }), (body, key) => {
      let ev;
      try {
        ev = parseManual(body, { idempotencyKey: key, now });
      } catch (err) {
        assert.match((err as Error).message, /^invalid ticket: \w/, 'refusal says what is invalid');
        assert.equal((err as { status?: number }).status, 400);
        return;
      }
      assert.deepEqual(parseManual(body, { idempotencyKey: key, now }), ev, 'deterministic for one key');
      assert.equal(ev.sourceEventId, key);
      // The schema counts characters (code points), not UTF-16 units.
      assert.ok(ev.title.trim().length > 0 && !ev.title.includes('\n') && [...ev.title].length <= 300, JSON.stringify(ev.title));
      assert.ok(!cutSurrogate(ev.title, body), 'title not cut inside a character');
      accepted++;
    }),
    { numRuns: RUNS.pure },
  );
  assert.ok(accepted >= 50, `only ${accepted} of ${RUNS.pure} inputs were accepted: the accepted-input checks barely ran`);
});

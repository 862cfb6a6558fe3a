// Review finding (model triage, phase 0): the model's guessed service and route were set
// on the event before it was fingerprinted, so one error emailed three times, with the
// model guessing nothing, then `checkout` + `POST /api/checkout`, then `checkout-service` +
// `/checkout`, became three tickets; the guessed route was also kept unredacted.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createApp } from '../../control/app.ts';
import { Intake } from '../../control/intake/index.ts';
import type { Classifier, ModelClassification } from '../../control/intake/model-classifier.ts';
import { silentLogger } from '../../control/log.ts';
import { Store } from '../../control/queue/store.ts';
import { createRedactor } from '../../lib/redact.ts';
import { tempDir, testConfig } from '../support/helpers.ts';

const ERROR = "TypeError: Cannot read properties of undefined (reading 'total')";

/** The email app with a classifier that gives the scripted answers in turn (a bug each time). */
function emailApp(t: TestContext, answers: Array<Partial<ModelClassification>> | null) {
  const home = tempDir(t);
  const config = testConfig(home, { triage: { classifier: 'model' } }, { BUGBOT_EMAIL_TOKEN: 'mail-token' });
  const store = new Store(join(home, 'bugbot.db'));
  t.after(() => store.close());
  const intake = new Intake({ store, config, redactor: createRedactor({ salt: 'test' }) });
  const classifier: Classifier | undefined = answers
    ? async () => ({ classification: 'bug', reason: 'model: a crash at checkout', scores: { bug: 1, feature: 0, question: 0, noise: 0 }, by: 'model', ...answers.shift() })
    : undefined;
  const app = createApp({ config, store, intake, logger: silentLogger, ...(classifier ? { classifier } : {}) });
  const send = async (n: number, body: string) => {
    const eml = `From: Customer ${n} <c${n}@example.com>\r\nTo: bugs@shop.test\r\nSubject: Problem ${n}\r\nMessage-ID: <m${n}@example.com>\r\n\r\n${body}\r\n`;
    const res = await app.request('/triggers/email/raw', { method: 'POST', body: eml, headers: { authorization: 'Bearer mail-token', 'content-type': 'message/rfc822' } });
    assert.equal(res.status, 200, await res.clone().text());
    const { results } = (await res.json()) as { results: Array<{ status: string; fingerprint: string; ticket: number }> };
    return results[0]!;
  };
  return { store, send };
}

test('the model guessing a service and route differently each time does not split one error into several tickets', async (t) => {
  const { store, send } = emailApp(t, [
    { by: 'rules' },
    { service: 'checkout', route: 'POST /api/checkout' },
    { service: 'checkout-service', route: '/checkout' },
  ]);
  // The reports' own words name the service and route as the model read them; the error
  // line is the same, and that is what a report is fingerprinted by.
  const first = await send(1, `When I pay I get this:\r\n${ERROR}`);
  const second = await send(2, `Checkout (POST /api/checkout) says, when I click pay:\r\n${ERROR}`);
  const third = await send(3, `The checkout-service page /checkout shows:\r\n${ERROR}`);
  assert.equal(first.status, 'created');
  assert.deepEqual([second.status, third.status], ['merged', 'merged'], 'the same error text, the same ticket');
  assert.equal(second.fingerprint, first.fingerprint);
  assert.equal(third.fingerprint, first.fingerprint);
  assert.equal(store.listTickets().length, 1);
});

test("the model's service and route are kept as labels, redacted, never the fingerprinted fields", async (t) => {
  const body = `Paying fails with ${ERROR}`;
  const withModel = emailApp(t, [{ service: 'billing password=hunter2', route: 'POST /api/pay?api_key=ZXhhbXBsZWtleQ' }]);
  const r = await withModel.send(1, body);
  const rulesOnly = emailApp(t, null);
  assert.equal(r.fingerprint, (await rulesOnly.send(1, body)).fingerprint, 'as fingerprinted with no model at all');
  const ticket = withModel.store.getTicket(r.ticket)!;
  assert.equal(ticket.service, null);
  assert.equal(ticket.route, null);
  assert.match(ticket.labels.model_service ?? '', /^billing /);
  assert.match(ticket.labels.model_route ?? '', /^POST \/api\/pay\?api_key=/);
  assert.doesNotMatch(JSON.stringify(ticket), /hunter2|ZXhhbXBsZWtleQ/, "the model's answer is stored redacted");
});

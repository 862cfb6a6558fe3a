import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp } from './helpers.ts';

const post = (url: string, body: unknown) =>
  fetch(`${url}/webhooks/payments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

const payment = (transaction_id: string, customer_id: string, amount_cents: number) => ({
  type: 'payment.succeeded',
  data: { transaction_id, customer_id, amount_cents },
});

test('a retried delivery of the same transaction is recorded once', async () => {
  const { url, store } = await startApp();
  assert.deepEqual(await (await post(url, payment('tx_1', 'cus_1', 500))).json(), { status: 'recorded' });
  assert.deepEqual(await (await post(url, payment('tx_1', 'cus_1', 500))).json(), { status: 'duplicate' });
  assert.equal(store.payments.length, 1);
});

test('two different transactions by the same customer are both recorded', async () => {
  const { url, store } = await startApp();
  assert.deepEqual(await (await post(url, payment('tx_10', 'cus_7', 1200))).json(), { status: 'recorded' });
  assert.deepEqual(await (await post(url, payment('tx_11', 'cus_7', 800))).json(), { status: 'recorded' });
  assert.equal(store.payments.length, 2);
});

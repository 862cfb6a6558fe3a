import type { Store } from './store.ts';

export interface PaymentWebhook {
  type: 'payment.succeeded';
  data: { transaction_id: string; customer_id: string; amount_cents: number };
}

export type WebhookResult = { status: 'recorded' } | { status: 'duplicate' };

/**
 * POST /webhooks/payments. The payment provider retries deliveries, so a
 * transaction seen before must not be recorded twice.
 */
export function handlePaymentWebhook(store: Store, event: PaymentWebhook): WebhookResult {
  const { transaction_id, customer_id, amount_cents } = event.data;
  const seen = store.payments.some((p) => p.customerId === customer_id);
  if (seen) return { status: 'duplicate' };
  store.payments.push({ transactionId: transaction_id, customerId: customer_id, amountCents: amount_cents });
  return { status: 'recorded' };
}

/**
 * Commits a burst of accepted refunds to the outbox in one transaction, for the in-process queue's
 * drain (that queue lives inside the running process, so it cannot be filled before its worker starts).
 * Writes what an accepted POST /refund-async writes (src/refunds/service.ts accept(), mode async): a
 * queued ledger row and its outbox message.
 */
import { createStore } from '../../src/store/index.js';

export interface FillOptions {
  url: string;
  intents: readonly string[];
  count: number;
  idPrefix: string;
}

const REQUESTS_QUEUE = 'stripe_refund_requests';

export async function fillQueuedRefunds(opts: FillOptions): Promise<void> {
  const store = await createStore({ url: opts.url });
  try {
    await store.transaction(async (tx) => {
      for (let n = 0; n < opts.count; n++) {
        const key = `${opts.idPrefix}-${n}`;
        await tx.refunds.insert({
          requestId: key,
          owner: '',
          paymentIntentId: opts.intents[n % opts.intents.length]!,
          amount: 1,
          currency: 'usd',
          status: 'queued',
          mode: 'async',
          metadata: {},
        });
        await tx.outbox.add({
          destination: REQUESTS_QUEUE,
          routingKey: REQUESTS_QUEUE,
          messageId: `${key}#accept`,
          payload: { request_key: key },
        });
      }
    });
  } finally {
    await store.close();
  }
}

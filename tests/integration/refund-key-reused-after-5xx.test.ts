/**
 * An Idempotency-Key whose POST /refund was answered 5xx stays bound to its body: the same key sent again with
 * another body is refused 422 idempotency_key_reused (the same body runs again). It was freed entirely, body and
 * all, so such a retry was run as a new request. For a refund that names its request_id the key then protects nothing: the first request
 * was handed to the worker ("Stripe did not confirm the refund; it will be completed in the background") and is
 * made; the retry under the same key with the body rebuilt (a new request_id, or none: then one derived from the
 * key) is a second refund, and the customer is refunded twice for one logical refund under one Idempotency-Key.
 *
 * README (Idempotency-Key): "another body gets 422 idempotency_key_reused"; (Errors) "Retry a 5xx with the same
 * request_id or Idempotency-Key: the refund is made at most once"; DESIGN: no money moved twice. Stripe keeps a
 * key bound to its first request's parameters whatever that request answered (a 5xx included), and refuses
 * others under it. Payment intents and checkout sessions get that from Stripe (their Stripe key derives from the
 * Idempotency-Key); a refund's Stripe key derives from its request_id, which the retry changed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';

const pgOk = await postgresAvailable();

describe.each<Db>(['sqlite', 'postgres'])(
  'an Idempotency-Key whose refund was answered 5xx, sent again with another body (%s)',
  (db) => {
    let svc: TestService;
    beforeAll(async () => {
      if (db === 'postgres' && !pgOk) return;
      svc = await startTestService(db, { STRIPE_MAX_NETWORK_RETRIES: '0', LOG_LEVEL: 'silent' });
    });
    afterAll(async () => {
      await svc?.faults({});
      await svc?.stop();
    });

    const stripeRefunds = async (pi: string) =>
      (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;

    for (const [name, retryBody] of [
      [
        'a new request_id',
        (pi: string) => ({ payment_intent_id: pi, amount: 1000, request_id: 'order-7-refund-b' }),
      ],
      ['no request_id', (pi: string) => ({ payment_intent_id: pi, amount: 1000 })],
    ] as const) {
      it.skipIf(db === 'postgres' && !pgOk)(
        `(${name}) is refused 422, and Stripe makes one refund`,
        async () => {
          const pi = await paidIntent(svc.url, 4000);
          const key = { 'Idempotency-Key': `refund-order-7-${name.replace(/ /g, '-')}` };
          const first = {
            payment_intent_id: pi,
            amount: 1000,
            request_id: `order-7-refund-a-${name.length}`,
          };
          await svc.faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
          const lost = await postJson(`${svc.url}/refund`, first, key);
          await svc.faults({});
          expect(lost.status).toBe(503);
          // The refund asked for is made in the background, as the answer says.
          await eventually(
            () => getJson(`${svc.url}/refund-status/${first.request_id}`),
            (r) => r.json.status === 'succeeded',
          );

          const retry = await postJson(`${svc.url}/refund`, retryBody(pi), key);
          const refunds = await eventually(
            async () => (await stripeRefunds(pi)).map((r) => r.amount),
            (amounts) => amounts.length > 1,
            1_500,
          );
          // Freed with its body: 200 and a second refund of 1000 at Stripe ([1000, 1000]).
          expect({ status: retry.status, code: retry.json.code, refunds }).toEqual({
            status: 422,
            code: 'idempotency_key_reused',
            refunds: [1000],
          });
        },
      );
    }
  },
);

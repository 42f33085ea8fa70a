/**
 * A client written for the Python service, in embedded mode (no API keys, the in-process queue): the refund its
 * README's front-end example queues (`payment_intent_id` alone) and the status check its README shows
 * (`GET /refund-status/{request_id}?payment_intent_id=...`), read as that client parses them, from the first answer
 * on; what it sees when it sends a field the contract does not name; and the payments the Python service took
 * before the switch (made at Stripe, naming no owner there): served without API keys, 404 with them unless
 * UNOWNED_PAYMENTS_OWNER names their owner, and then that owner's alone (the README's "Moving from the Python
 * service" says so).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

const readme = JSON.parse(
  readFileSync(new URL('../fixtures/original-readme-examples.json', import.meta.url), 'utf8'),
) as {
  requests: Record<string, Record<string, unknown>>;
  responses: Record<string, { body: Record<string, unknown> }>;
};

/** Each field of the original README's answer `operation`, with the JSON type its example has. */
function typesOf(operation: string): Record<string, string> {
  return Object.fromEntries(Object.entries(readme.responses[operation]!.body).map(([k, v]) => [k, typeof v]));
}

function typesIn(body: Record<string, unknown>, fields: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(fields).map((k) => [k, typeof body[k]]));
}

describe('a client of the original service, in embedded mode', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  async function paidIntent(amount: number): Promise<string> {
    const res = await postJson(`${svc.url}/payment-intent`, {
      amount,
      currency: 'sgd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(res.status).toBe(200);
    return res.json.paymentIntentId as string;
  }

  it("queues the front-end example's refund and answers its status check with the README's fields and types", async () => {
    const pi = await paidIntent(7_000);
    const queued = await postJson(`${svc.url}/refund-async`, {
      ...readme.requests.createRefundAsyncFrontend,
      payment_intent_id: pi,
    });
    expect(queued.status).toBe(202);
    expect(typesIn(queued.json, typesOf('createRefundAsync'))).toEqual(typesOf('createRefundAsync'));
    expect(queued.json.success).toBe(true);
    const requestId = queued.json.request_id as string;

    const statusUrl = `${svc.url}/refund-status/${requestId}?payment_intent_id=${pi}`;
    const first = await getJson(statusUrl);
    expect(first.status).toBe(200);
    // What is left, fixed when the refund was accepted: a number from the first answer on, as the README shows it.
    expect(first.json).toMatchObject({ success: true, request_id: requestId, amount: 7_000 });

    const done = await eventually(
      () => getJson(statusUrl),
      (r) => r.json.status === 'succeeded',
    );
    expect(done.json.status).toBe('succeeded');
    expect(typesIn(done.json, typesOf('getRefundStatus'))).toEqual(typesOf('getRefundStatus'));
    expect(done.json).toMatchObject({ success: true, request_id: requestId, amount: 7_000 });
    expect(done.json.refund_id).toMatch(/^re_/);
  });

  it('refuses a body field the contract does not name with 400 naming it, and makes nothing', async () => {
    const before = (await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data.length;
    const res = await postJson(`${svc.url}/payment-intent`, {
      ...readme.requests.createPaymentIntent,
      customer_id: 'cus_1',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(JSON.stringify(res.json.errors)).toContain('customer_id');
    expect((await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data).toHaveLength(before);
  });
});

/** A payment as the Python service took it: made at Stripe directly, naming no owner of this service's. */
async function paymentTakenBefore(svc: TestService, amount: number) {
  const pi = await svc.deps.stripe.paymentIntents.create({
    amount,
    currency: 'sgd',
    payment_method: 'pm_card_visa',
    allowed_payment_method_types: ['card'],
    confirm: true,
  });
  expect(pi.status).toBe('succeeded');
  const session = await svc.deps.stripe.checkout.sessions.create({
    mode: 'payment',
    line_items: [
      {
        price_data: { currency: 'sgd', product_data: { name: 'Product' }, unit_amount: amount },
        quantity: 1,
      },
    ],
    success_url: 'http://yourdomain.com/success?session_id={CHECKOUT_SESSION_ID}',
    cancel_url: 'http://yourdomain.com/cancel',
  });
  return { pi: pi.id, session: session.id };
}

describe('payments the Python service took before the switch', () => {
  it('are read and refunded without API keys', async () => {
    const svc = await startTestService('sqlite');
    try {
      const { pi, session } = await paymentTakenBefore(svc, 8_000);
      const read = await getJson(`${svc.url}/payment-intent/${pi}`);
      expect(read.status).toBe(200);
      expect(read.json).toMatchObject({ id: pi, amount: 8_000, status: 'succeeded' });
      expect((await getJson(`${svc.url}/checkout-session?session_id=${session}`)).status).toBe(200);
      const refund = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 5_000 });
      expect(refund.status).toBe(200);
      expect(refund.json.refund).toMatchObject({ amount: 5_000, status: 'succeeded' });
    } finally {
      await svc.stop();
    }
  });

  it('answer 404 with API keys, as any payment made outside the service, and nothing is refunded', async () => {
    const svc = await startTestService('sqlite', { API_AUTH: 'on' });
    try {
      const key = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
      const auth = { authorization: `Bearer ${key}` };
      const { pi, session } = await paymentTakenBefore(svc, 8_000);
      expect((await getJson(`${svc.url}/payment-intent/${pi}`, auth)).status).toBe(404);
      expect((await getJson(`${svc.url}/checkout-session?session_id=${session}`, auth)).status).toBe(404);
      for (const path of ['/refund', '/refund-async']) {
        const res = await postJson(`${svc.url}${path}`, { payment_intent_id: pi, amount: 5_000 }, auth);
        expect(res.status, path).toBe(404);
        expect(res.json.code, path).toBe('resource_missing');
      }
      expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toEqual([]);
      // The key itself works: the service's own payments are its owner's.
      const own = await postJson(`${svc.url}/payment-intent`, { amount: 100, currency: 'sgd' }, auth);
      expect(own.status).toBe(200);
    } finally {
      await svc.stop();
    }
  });

  it('are the owner UNOWNED_PAYMENTS_OWNER names with API keys: read and refunded once, 404 to other owners', async () => {
    const svc = await startTestService('sqlite', { API_AUTH: 'on', UNOWNED_PAYMENTS_OWNER: 'shop' });
    try {
      const shop = {
        authorization: `Bearer ${(await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key}`,
      };
      const other = {
        authorization: `Bearer ${(await createKey(svc.deps.store.apiKeys, { owner: 'other', kind: 'secret' })).key}`,
      };
      const first = await paymentTakenBefore(svc, 8_000);
      const second = await paymentTakenBefore(svc, 6_000);

      // Another owner first: 404 everywhere, and nothing refunded.
      for (const { pi, session } of [first, second]) {
        expect((await getJson(`${svc.url}/payment-intent/${pi}`, other)).status).toBe(404);
        expect((await getJson(`${svc.url}/checkout-session?session_id=${session}`, other)).status).toBe(404);
        for (const path of ['/refund', '/refund-async']) {
          const res = await postJson(`${svc.url}${path}`, { payment_intent_id: pi, amount: 1_000 }, other);
          expect(res.status, path).toBe(404);
          expect(res.json.code, path).toBe('resource_missing');
        }
        expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toEqual([]);
      }

      const read = await getJson(`${svc.url}/payment-intent/${first.pi}`, shop);
      expect(read.status).toBe(200);
      expect(read.json).toMatchObject({ id: first.pi, amount: 8_000, status: 'succeeded' });
      expect((await getJson(`${svc.url}/checkout-session?session_id=${first.session}`, shop)).status).toBe(
        200,
      );
      const refund = await postJson(
        `${svc.url}/refund`,
        { payment_intent_id: first.pi, amount: 5_000 },
        shop,
      );
      expect(refund.status).toBe(200);
      expect(refund.json.refund).toMatchObject({ amount: 5_000, status: 'succeeded' });
      expect((await svc.deps.stripe.refunds.list({ payment_intent: first.pi })).data).toHaveLength(1);

      const queued = await postJson(`${svc.url}/refund-async`, { payment_intent_id: second.pi }, shop);
      expect(queued.status).toBe(202);
      const done = await eventually(
        () => getJson(`${svc.url}/refund-status/${queued.json.request_id}`, shop),
        (r) => r.json.status === 'succeeded',
      );
      expect(done.json).toMatchObject({ status: 'succeeded', amount: 6_000 });
      const atStripe = await svc.deps.stripe.refunds.list({ payment_intent: second.pi });
      expect(atStripe.data.map((r) => r.amount)).toEqual([6_000]);

      // Still nobody else's once their owner has used them.
      expect((await getJson(`${svc.url}/payment-intent/${first.pi}`, other)).status).toBe(404);
      expect((await getJson(`${svc.url}/checkout-session?session_id=${first.session}`, other)).status).toBe(
        404,
      );
    } finally {
      await svc.stop();
    }
  });
});

/**
 * A client written for the Python service, in embedded mode (no API keys, the in-process queue): the refund its
 * README's front-end example queues (`payment_intent_id` alone) and the status check its README shows
 * (`GET /refund-status/{request_id}?payment_intent_id=...`), read as that client parses them, from the first answer
 * on; and what it sees when it sends a field the contract does not name (the README's "Moving from the Python
 * service" says so).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

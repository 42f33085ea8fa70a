/**
 * When the service loses Stripe's answer it must not call a refund failed that Stripe actually made:
 * the worker looks before giving up, and a later webhook puts a given-up refund right.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox } from '../../src/sandbox/index.js';
import { getJson, postJson } from '../helpers/http.js';
import { requeueStuck } from '../../src/service.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

async function paid(amount: number): Promise<string> {
  const res = await postJson(`${svc.url}/payment-intent`, {
    amount,
    currency: 'usd',
    payment_method: 'pm_card_visa',
    confirm: true,
  });
  return res.json.paymentIntentId as string;
}

/**
 * A service on a Stripe of its own that sends no webhooks (so only the worker's own look at Stripe can find a
 * refund), with two worker attempts and no SDK retries; runs `body` with a paid intent of 3000 and stops both.
 */
async function withQuietStripe(
  secretKey: string,
  body: (quiet: TestService, pi: string, faults: (config: object | null) => Promise<void>) => Promise<void>,
): Promise<void> {
  const sandbox = await startSandbox({ secretKey });
  const quiet = await startTestService('sqlite', {
    STRIPE_SECRET_KEY: secretKey,
    STRIPE_API_BASE: sandbox.url,
    API_AUTH: 'off',
    WORKER_MAX_ATTEMPTS: '2',
    WORKER_RETRY_DELAYS_MS: '100',
    STRIPE_MAX_NETWORK_RETRIES: '0',
  });
  const faults = async (config: object | null) => {
    const res = await fetch(`${sandbox.url}/_sandbox/faults`, {
      method: config ? 'POST' : 'DELETE',
      headers: { 'content-type': 'application/json' },
      ...(config ? { body: JSON.stringify(config) } : {}),
    });
    expect(res.status).toBeLessThan(300);
  };
  try {
    const created = await postJson(`${quiet.url}/payment-intent`, {
      amount: 3000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    await body(quiet, created.json.paymentIntentId as string, faults);
  } finally {
    await quiet.stop();
    await sandbox.close();
  }
}

describe('refunds whose answer was lost', () => {
  it('are recorded as made when Stripe made them, even after every attempt lost its answer', async () => {
    await withQuietStripe('sk_test_lostanswer1', async (quiet, pi, faults) => {
      // Stripe processes every refund call, then the connection drops before the answer arrives.
      await faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
      const res = await postJson(`${quiet.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 1200,
        request_id: 'lost-answer',
      });
      expect(res.status).toBe(202);
      const done = await eventually(
        () => getJson(`${quiet.url}/refund-status/lost-answer`),
        (r) => r.json.status === 'succeeded' || r.json.status === 'failed',
      );
      expect(done.json).toMatchObject({
        status: 'succeeded',
        amount: 1200,
        refund_id: expect.stringMatching(/^re_/),
      });
      const refunds = await quiet.deps.stripe.refunds.list({ payment_intent: pi });
      expect(refunds.data).toHaveLength(1);
      expect(refunds.data[0]!.id).toBe(done.json.refund_id);
    });
  });

  it('stay processing, not failed, while Stripe cannot say whether it made them, and are finished once it can', async () => {
    await withQuietStripe('sk_test_unknownfate1', async (quiet, pi, faults) => {
      // For now Stripe loses every answer about refunds: it makes the refund, then drops the connection, and
      // its list of refunds is unreachable too.
      await faults({ drop_rate: 1, match: { path_prefix: '/v1/refunds' } });
      const res = await postJson(
        `${quiet.url}/refund-async`,
        { payment_intent_id: pi, amount: 1200, request_id: 'unknown-fate' },
        { 'x-request-id': 'unknown-fate-req' },
      );
      expect(res.status).toBe(202);
      // Every attempt spent: the message is dead-lettered.
      const deadLetter = quiet.deps.topology.deadLetter;
      await eventually(
        () => quiet.deps.broker.queueDepth(deadLetter),
        (n) => n === 1,
      );
      expect(await quiet.deps.broker.queueDepth(deadLetter)).toBe(1);
      // Stripe made it; the service cannot know yet. Not failed: the amount stays reserved.
      expect((await getJson(`${quiet.url}/refund-status/unknown-fate`)).json).toMatchObject({
        status: 'processing',
        refund_id: null,
      });
      const over = await postJson(`${quiet.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 2000,
        request_id: 'would-over-refund',
      });
      expect(over.status).toBe(409);
      expect(over.json.code).toBe('amount_exceeds_refundable');

      // Stripe answers again; the stuck-refund sweep (run now rather than after 10 min) queues it once more.
      await faults(null);
      expect(await requeueStuck(quiet.deps, 0)).toBe(1);
      quiet.deps.relay.notify();
      const done = await eventually(
        () => getJson(`${quiet.url}/refund-status/unknown-fate`),
        (r) => r.json.status !== 'processing' && r.json.status !== 'queued',
      );
      const atStripe = (await quiet.deps.stripe.refunds.list({ payment_intent: pi })).data;
      expect(atStripe).toHaveLength(1);
      expect(done.json).toMatchObject({ status: 'succeeded', amount: 1200, refund_id: atStripe[0]!.id });
      // The sweep's copy of the message carried the id of the request that asked for the refund, as the first did:
      // the worker's lines about it, before and after the sweep, name that request.
      const about = quiet.lines
        .map((l) => JSON.parse(l) as { msg: string; request_id?: string; reqId?: string })
        .filter((l) => l.request_id === 'unknown-fate');
      expect(
        about
          .filter((l) =>
            [
              'refund outcome unknown and Stripe cannot be asked; left processing for the stuck-refund sweep',
              'refund found at Stripe',
            ].includes(l.msg),
          )
          .map((l) => [l.msg, l.reqId]),
      ).toEqual([
        [
          'refund outcome unknown and Stripe cannot be asked; left processing for the stuck-refund sweep',
          'unknown-fate-req',
        ],
        ['refund found at Stripe', 'unknown-fate-req'],
      ]);
    });
  });

  it('are put right by a later webhook when the service had given up', async () => {
    const pi = await paid(2000);
    // A refund the worker gave up on (retries exhausted) although Stripe did make it.
    await svc.deps.store.refunds.insert({
      requestId: 'given-up',
      paymentIntentId: pi,
      amount: 800,
      currency: 'usd',
      status: 'failed',
      failureReason: 'retries_exhausted:transient',
      mode: 'async',
    });
    const made = await svc.deps.stripe.refunds.create(
      { payment_intent: pi, amount: 800, metadata: { request_id: 'given-up' } },
      { idempotencyKey: 'refund:given-up' },
    );
    const fixed = await eventually(
      () => getJson(`${svc.url}/refund-status/given-up`),
      (r) => r.json.status === 'succeeded',
    );
    expect(fixed.json).toMatchObject({ status: 'succeeded', refund_id: made.id, failure_reason: null });
    // And it counts again against what is left to refund.
    expect(await svc.deps.store.refunds.sumCommitted(pi)).toBe(800);
  });

  it('a refund Stripe refused stays failed', async () => {
    const pi = await paid(1000);
    await svc.deps.store.refunds.insert({
      requestId: 'refused',
      paymentIntentId: pi,
      amount: 500,
      currency: 'usd',
      status: 'failed',
      failureReason: 'charge_already_refunded',
      mode: 'async',
      stripeRefundId: 're_refused_elsewhere',
    });
    expect(
      await svc.deps.store.refunds.correctFromStripe('refused', {
        status: 'succeeded',
        stripeRefundId: 're_other',
      }),
    ).toBe(false);
    expect((await svc.deps.store.refunds.get('refused'))!.status).toBe('failed');
  });
});

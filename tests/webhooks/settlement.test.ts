/**
 * Refunds that Stripe settles later reach their final state in the ledger, in /refund-status and on
 * `stripe_refund_responses` purely through webhooks; refunds made in the dashboard are learnt the same
 * way; and an event whose processing fails is retried until it sticks.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import {
  getJson,
  paidInDashboard,
  paidThroughService,
  postJson,
  rabbitReady,
  sandboxEvents,
  useRig,
  until,
  type AmqpMessage,
} from './support/rig.js';

const rabbit = await rabbitReady('webhook settlement');

describe.skipIf(!rabbit)('refunds settled through webhooks', () => {
  // The sandbox delivers its own signed webhooks here; pending refunds stay pending until a test settles them.
  const rig = useRig('sqlite', 'settle', { deliverWebhooks: true });
  const responses: AmqpMessage[] = [];

  async function outcomesFor(requestId: string): Promise<AmqpMessage[]> {
    responses.push(...(await rig.drain(rig.topology.responses)));
    return responses.filter((m) => (m.body as { request_id: string }).request_id === requestId);
  }

  async function refundAsyncStuckPending(card: string, requestId: string) {
    const pi = await paidThroughService(rig, card, 4000);
    const accepted = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      request_id: requestId,
    });
    expect(accepted.status).toBe(202);
    const seen = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
      return r.json.status === 'pending' && r.json;
    }, 'the worker to record the pending refund');
    const refundId = seen.refund_id as string;
    expect((await rig.dashboard.refunds.retrieve(refundId)).status).toBe('pending');
    await rig.settled();
    // Nothing but the sandbox can move it on: still pending once all work is done.
    expect((await getJson(`${rig.svc.url}/refund-status/${requestId}`)).json.status).toBe('pending');
    expect((await outcomesFor(requestId)).map((m) => (m.body as { status: string }).status)).toEqual([
      'pending',
    ]);
    return { pi, refundId };
  }

  it('a pending refund becomes succeeded in the ledger, /refund-status and the responses queue', async () => {
    const { refundId } = await refundAsyncStuckPending('pm_card_pendingRefund', 'settle-ok');
    const refundCalls = rig.sandbox
      .capturedRequests()
      .filter((r) => r.method === 'POST' && r.path === '/v1/refunds');
    await rig.settleRefund(refundId);
    const done = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/settle-ok`);
      return r.json.status === 'succeeded' && r.json;
    }, 'the webhook to settle the refund');
    expect(done).toMatchObject({ status: 'succeeded', refund_id: refundId, amount: 4000 });
    await rig.settled();
    const outcomes = await outcomesFor('settle-ok');
    expect(outcomes.map((m) => (m.body as { status: string }).status)).toEqual(['pending', 'succeeded']);
    expect(outcomes[1]!.messageId).toMatch(/^settle-ok#succeeded#\d{4}-/);
    expect(outcomes[1]!.body).toMatchObject({ success: true, refund_id: refundId, failure_reason: null });
    // Only the webhook moved it: the service asked Stripe for no second refund.
    expect(
      rig.sandbox.capturedRequests().filter((r) => r.method === 'POST' && r.path === '/v1/refunds'),
    ).toHaveLength(refundCalls.length);
  });

  it('a refund made in the dashboard is recorded and counts against what is left to refund', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    const external = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 300 });
    const row = await until(
      () => rig.svc.deps.store.refunds.getByStripeId(external.id),
      'the dashboard refund',
    );
    expect(row).toMatchObject({
      mode: 'external',
      amount: 300,
      paymentIntentId: pi,
      requestId: `stripe:${external.id}`,
    });
    await until(
      async () => (await rig.svc.deps.store.refunds.getByStripeId(external.id))?.status === 'succeeded',
      'succeeded',
    );
    const intent = await getJson(`${rig.svc.url}/payment-intent/${pi}`);
    expect(intent.json.amount_refunded).toBe(300);
    const over = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 701 });
    expect(over.status).toBe(409);
    const rest = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi });
    expect(rest.status).toBe(200);
    expect(rest.json.refund).toMatchObject({ amount: 700, status: 'succeeded' });
    await rig.settled();
    expect((await rig.svc.deps.store.refunds.listForPaymentIntent(pi)).map((r) => r.amount).sort()).toEqual([
      300, 700,
    ]);
  });

  it('an event whose processing fails (Stripe down) is stored, retried, and applied once Stripe answers', async () => {
    const pi = await paidInDashboard(rig, 'pm_card_pendingRefund', 1500);
    const faults = async (body: Record<string, unknown> | null) => {
      const res = await fetch(`${rig.sandbox.url}/_sandbox/faults`, {
        method: body ? 'POST' : 'DELETE',
        headers: { 'content-type': 'application/json' },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      expect(res.ok).toBe(true);
    };
    // The event says `pending`, which may be stale, so the service must read the refund, and reading fails.
    await faults({ error_rate: 1, match: { method: 'GET', path_prefix: '/v1/refunds' } });
    let eventId: string;
    try {
      const refund = await rig.dashboard.refunds.create({ payment_intent: pi });
      const created = await until(async () => {
        const events = await sandboxEvents(rig, new Set(['refund.created']));
        return events.find((e) => (e.data.object as Stripe.Refund).id === refund.id);
      }, 'the refund.created event');
      eventId = created.id;
      const failed = await until(async () => {
        const e = await rig.svc.deps.store.inbox.get(eventId);
        return e !== null && e.attempts >= 1 && e;
      }, 'a failed processing attempt');
      expect(failed.processedAt).toBeNull();
      expect(failed.lastError).toBeTruthy();
      expect(await rig.svc.deps.store.refunds.getByStripeId(refund.id)).toBeNull();
    } finally {
      await faults(null);
    }
    const applied = await until(async () => {
      const e = await rig.svc.deps.store.inbox.get(eventId);
      return e?.processedAt !== null && e;
    }, 'the retry sweep to apply the event');
    expect(applied).toBeTruthy();
    const row = await rig.svc.deps.store.refunds.getByStripeId(
      (await rig.dashboard.refunds.list({ payment_intent: pi })).data[0]!.id,
    );
    expect(row).toMatchObject({ status: 'pending', mode: 'external', amount: 1500 });
  });

  // https://docs.stripe.com/testing#refunds: with 4000000000005126 a refund "begins as `succeeded`. Some time
  // later, its status transitions to `failed` and sends a `charge.refund.updated` webhook event."
  // The ledger follows (canAdvanceRefund's one exception): failed, its outcome published, its amount free again.
  // Last in the file: its polling can trip the service's rate limit for whatever runs next.
  it('a refund that succeeded and then fails becomes failed, says why, and frees the amount again', async () => {
    const pi = await paidThroughService(rig, 'pm_card_refundFail', 4000);
    const accepted = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      request_id: 'settle-fail',
    });
    expect(accepted.status).toBe(202);
    const seen = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/settle-fail`);
      return r.json.status === 'succeeded' && r.json;
    }, 'the worker to record the succeeded refund');
    const refundId = seen.refund_id as string;
    await rig.settled();
    const blocked = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 100 });
    expect(blocked.status).toBe(409);
    await rig.settleRefund(refundId);
    const done = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/settle-fail`);
      return r.json.status === 'failed' && r.json;
    }, 'the webhook to fail the refund');
    expect(done).toMatchObject({ status: 'failed', failure_reason: 'expired_or_canceled_card' });
    await rig.settled();
    const outcomes = await outcomesFor('settle-fail');
    expect(outcomes.map((m) => (m.body as { status: string }).status)).toEqual(['succeeded', 'failed']);
    expect(outcomes[1]!.body).toMatchObject({ success: false, failure_reason: 'expired_or_canceled_card' });
    // The failed amount no longer counts against the payment: the full amount can be refunded again.
    const again = await postJson(`${rig.svc.url}/refund`, {
      payment_intent_id: pi,
      request_id: 'settle-fail-2',
    });
    expect(again.status).toBe(200);
    // On this card a new refund begins succeeded too (and would fail later).
    expect(again.json.refund).toMatchObject({ amount: 4000, status: 'succeeded' });
  });
});

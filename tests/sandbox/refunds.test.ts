import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cardOnly,
  control,
  errorOf,
  paidIntent,
  startSandbox,
  stripeFor,
  waitFor,
  type Sandbox,
} from './helpers/fixtures.js';

describe('Refunds and charges', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;

  beforeAll(async () => {
    // Long enough that the control endpoint, not the timer, settles refunds in the tests that use it.
    sandbox = await startSandbox({ refundSettleDelayMs: 60_000 });
    stripe = stripeFor(sandbox);
  });
  afterAll(() => sandbox.close());

  it('refunds partially, then the rest, then refuses a third refund', async () => {
    const intent = await paidIntent(stripe, 5000);
    const partial = await stripe.refunds.create({
      payment_intent: intent.id,
      amount: 1200,
      reason: 'requested_by_customer',
      metadata: { ticket: 'T-1' },
    });
    expect(partial.id).toMatch(/^re_/);
    expect(partial.object).toBe('refund');
    expect(partial.status).toBe('succeeded');
    expect(partial.amount).toBe(1200);
    expect(partial.reason).toBe('requested_by_customer');
    expect(partial.metadata).toEqual({ ticket: 'T-1' });
    expect(partial.payment_intent).toBe(intent.id);
    expect(partial.charge).toBe(intent.latest_charge);

    let charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge.amount_refunded).toBe(1200);
    expect(charge.refunded).toBe(false);

    const rest = await stripe.refunds.create({ charge: charge.id });
    expect(rest.amount).toBe(3800);
    charge = await stripe.charges.retrieve(charge.id, { expand: ['refunds'] });
    expect(charge.amount_refunded).toBe(5000);
    expect(charge.refunded).toBe(true);
    expect(charge.refunds?.data.map((r) => r.id)).toEqual([rest.id, partial.id]);

    const third = await errorOf(() => stripe.refunds.create({ payment_intent: intent.id, amount: 1 }));
    expect(third.statusCode).toBe(400);
    expect(third.code).toBe('charge_already_refunded');
    expect(third.message).toBe(`Charge ${charge.id} has already been refunded.`);
  });

  it('rejects a refund larger than what is left, naming the amount parameter', async () => {
    const intent = await paidIntent(stripe, 1000);
    await stripe.refunds.create({ payment_intent: intent.id, amount: 600 });
    const err = await errorOf(() => stripe.refunds.create({ payment_intent: intent.id, amount: 500 }));
    expect(err.statusCode).toBe(400);
    expect(err.param).toBe('amount');
    expect(err.message).toBe('Refund amount ($5.00) is greater than unrefunded amount on charge ($4.00)');
  });

  it('rejects refunds of unpaid intents and unknown objects', async () => {
    const unpaid = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', ...cardOnly });
    const err = await errorOf(() => stripe.refunds.create({ payment_intent: unpaid.id }));
    expect(err.statusCode).toBe(400);
    expect(err.param).toBe('payment_intent');
    expect(err.message).toContain('does not have a successful charge to refund');

    const declined = await errorOf(() =>
      stripe.paymentIntents.create({
        amount: 900,
        currency: 'usd',
        payment_method: 'pm_card_chargeDeclined',
        confirm: true,
        ...cardOnly,
      }),
    );
    const failedCharge = (declined.payment_intent as Stripe.PaymentIntent).latest_charge as string;
    const onFailed = await errorOf(() => stripe.refunds.create({ charge: failedCharge }));
    expect(onFailed.statusCode).toBe(400);

    const missingIntent = await errorOf(() => stripe.refunds.create({ payment_intent: 'pi_nothing' }));
    expect(missingIntent.statusCode).toBe(404);
    expect(missingIntent.code).toBe('resource_missing');
    expect(missingIntent.message).toBe("No such payment_intent: 'pi_nothing'");

    const missingRefund = await errorOf(() => stripe.refunds.retrieve('re_nothing'));
    expect(missingRefund.statusCode).toBe(404);
    expect(missingRefund.message).toBe("No such refund: 're_nothing'");

    const neither = await errorOf(() => stripe.refunds.create({}));
    expect(neither.code).toBe('parameter_missing');

    const badReason = await errorOf(() =>
      stripe.refunds.create({
        charge: failedCharge,
        reason: 'changed_mind' as Stripe.RefundCreateParams.Reason,
      }),
    );
    expect(badReason.param).toBe('reason');
  });

  it('retrieves, updates metadata and lists refunds filtered by intent and charge', async () => {
    const a = await paidIntent(stripe, 3000);
    const b = await paidIntent(stripe, 3000);
    const r1 = await stripe.refunds.create({ payment_intent: a.id, amount: 100 });
    const r2 = await stripe.refunds.create({ payment_intent: a.id, amount: 200 });
    const r3 = await stripe.refunds.create({ payment_intent: b.id, amount: 300 });

    const fetched = await stripe.refunds.retrieve(r1.id, { expand: ['charge'] });
    expect((fetched.charge as Stripe.Charge).id).toBe(a.latest_charge);

    const updated = await stripe.refunds.update(r1.id, { metadata: { reason: 'damaged' } });
    expect(updated.metadata).toEqual({ reason: 'damaged' });
    expect((await stripe.refunds.retrieve(r1.id)).metadata).toEqual({ reason: 'damaged' });

    const forA = await stripe.refunds.list({ payment_intent: a.id });
    expect(forA.data.map((r) => r.id)).toEqual([r2.id, r1.id]);
    const forChargeB = await stripe.refunds.list({ charge: b.latest_charge as string });
    expect(forChargeB.data.map((r) => r.id)).toEqual([r3.id]);
    const page = await stripe.refunds.list({ payment_intent: a.id, limit: 1 });
    expect(page.has_more).toBe(true);

    const cancel = await errorOf(() => stripe.refunds.cancel(r3.id));
    expect(cancel.statusCode).toBe(400);
  });

  it('lists charges filtered by payment_intent, including failed attempts', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1500, currency: 'usd', ...cardOnly });
    await errorOf(() =>
      stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_chargeDeclinedLostCard' }),
    );
    const paid = await stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_visa' });
    const charges = await stripe.charges.list({ payment_intent: intent.id });
    expect(charges.data).toHaveLength(2);
    expect(charges.data[0]?.id).toBe(paid.latest_charge);
    expect(charges.data.map((c) => c.status)).toEqual(['succeeded', 'failed']);
    expect(charges.data[1]?.failure_code).toBe('card_declined');
    const missing = await errorOf(() => stripe.charges.retrieve('ch_unknown'));
    expect(missing.message).toBe("No such charge: 'ch_unknown'");
  });

  it('pm_card_pendingRefund: refund is pending, then succeeds when settled', async () => {
    const intent = await paidIntent(stripe, 2000, 'pm_card_pendingRefund');
    const refund = await stripe.refunds.create({ payment_intent: intent.id });
    expect(refund.status).toBe('pending');
    // In-flight refunds count against the charge.
    const more = await errorOf(() => stripe.refunds.create({ payment_intent: intent.id, amount: 1 }));
    expect(more.code).toBe('charge_already_refunded');

    const settled = await control(sandbox, 'POST', `/refunds/${refund.id}/settle`);
    expect(settled.status).toBe(200);
    expect((settled.json as Stripe.Refund).status).toBe('succeeded');
    expect((await stripe.refunds.retrieve(refund.id)).status).toBe('succeeded');
    const twice = await control(sandbox, 'POST', `/refunds/${refund.id}/settle`);
    expect(twice.status).toBe(400);
    expect((await control(sandbox, 'POST', '/refunds/re_missing/settle')).status).toBe(404);
  });

  it('pm_card_refundFail: refund succeeds, then fails and the amount becomes refundable again', async () => {
    const intent = await paidIntent(stripe, 2000, 'pm_card_refundFail');
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 2000 });
    expect(refund.status).toBe('succeeded');
    await control(sandbox, 'POST', `/refunds/${refund.id}/settle`);
    const failed = await stripe.refunds.retrieve(refund.id);
    expect(failed.status).toBe('failed');
    expect(failed.failure_reason).toBe('expired_or_canceled_card');
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge.amount_refunded).toBe(0);
    expect(charge.refunded).toBe(false);
    const types = (await stripe.events.list({ limit: 5 })).data.map((e) => e.type);
    expect(types.slice(0, 3)).toEqual(['charge.refund.updated', 'refund.updated', 'refund.failed']);
  });

  it('settles pending refunds on its own after refundSettleDelayMs', async () => {
    const quick = await startSandbox({ refundSettleDelayMs: 30 });
    try {
      const client = stripeFor(quick);
      const ok = await paidIntent(client, 1000, 'pm_card_pendingRefund');
      const bad = await paidIntent(client, 1000, 'pm_card_refundFail');
      const r1 = await client.refunds.create({ payment_intent: ok.id });
      const r2 = await client.refunds.create({ payment_intent: bad.id });
      expect([r1.status, r2.status]).toEqual(['pending', 'succeeded']);
      await waitFor(
        async () => (await client.refunds.retrieve(r1.id)).status === 'succeeded',
        'r1 to succeed',
      );
      await waitFor(async () => (await client.refunds.retrieve(r2.id)).status === 'failed', 'r2 to fail');
      const updates = await client.events.list({ type: 'refund.updated' });
      expect(updates.data).toHaveLength(2);
      const previous = Object.fromEntries(
        updates.data.map((e) => [(e.data.object as Stripe.Refund).id, e.data.previous_attributes]),
      );
      expect(previous).toEqual({ [r1.id]: { status: 'pending' }, [r2.id]: { status: 'succeeded' } });
    } finally {
      await quick.close();
    }
  });
});

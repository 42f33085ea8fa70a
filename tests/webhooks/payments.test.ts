/**
 * Payment intents and checkout sessions that change in Stripe (confirmed, declined or canceled in the
 * dashboard, paid on the hosted page, expired) reach the ledger through their webhooks alone.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { payOnHostedPage, postJson as postWithHeaders } from '../helpers/http.js';
import { paidInDashboard, postJson, rabbitReady, sandboxEvents, useRig, until } from './support/rig.js';

const readme = JSON.parse(
  readFileSync(new URL('../fixtures/original-readme-examples.json', import.meta.url), 'utf8'),
) as { requests: Record<string, Record<string, unknown>> };

const rabbit = await rabbitReady('webhook payments');

describe.skipIf(!rabbit)('payments learnt from webhooks', () => {
  const rig = useRig('sqlite', 'payments', { deliverWebhooks: true });

  const ledgerStatus = (id: string) => until(() => rig.svc.deps.store.payments.get(id), `ledger row ${id}`);
  const statusBecomes = (id: string, status: string) =>
    until(
      async () => (await rig.svc.deps.store.payments.get(id))?.status === status,
      `${id} to be ${status}`,
    );

  async function unconfirmedIntent(amount = 1200): Promise<string> {
    const res = await postJson(`${rig.svc.url}/payment-intent`, { amount, currency: 'usd' });
    expect(res.status).toBe(200);
    const id = res.json.paymentIntentId as string;
    expect((await ledgerStatus(id)).status).toBe('requires_payment_method');
    return id;
  }

  it('payment_intent.succeeded: an intent confirmed outside the service becomes succeeded', async () => {
    const id = await unconfirmedIntent();
    await rig.dashboard.paymentIntents.confirm(id, {
      payment_method: 'pm_card_visa',
      return_url: 'https://shop.example.com/done',
    });
    await statusBecomes(id, 'succeeded');
    expect(await rig.svc.deps.store.payments.get(id)).toMatchObject({ amount: 1200, currency: 'usd' });
  });

  it('payment_intent.canceled: an intent canceled in the dashboard becomes canceled', async () => {
    const id = await unconfirmedIntent();
    await rig.dashboard.paymentIntents.cancel(id);
    await statusBecomes(id, 'canceled');
  });

  it('payment_intent.payment_failed is applied, and an older event arriving later moves nothing back', async () => {
    const id = await unconfirmedIntent(1300);
    await expect(
      rig.dashboard.paymentIntents.confirm(id, {
        payment_method: 'pm_card_chargeDeclined',
        return_url: 'https://shop.example.com/done',
      }),
    ).rejects.toMatchObject({ code: 'card_declined' });
    const failed = await until(async () => {
      const events = await sandboxEvents(rig, new Set(['payment_intent.payment_failed']));
      return events.find((e) => (e.data.object as Stripe.PaymentIntent).id === id);
    }, 'the payment_failed event');
    await until(async () => (await rig.svc.deps.store.inbox.get(failed.id))?.processedAt, 'it to be applied');
    expect((await rig.svc.deps.store.payments.get(id))!.status).toBe('requires_payment_method');

    await rig.dashboard.paymentIntents.confirm(id, {
      payment_method: 'pm_card_visa',
      return_url: 'https://shop.example.com/done',
    });
    await statusBecomes(id, 'succeeded');
    // Stripe redelivers the old failure (same snapshot, as if late); it must not undo the success.
    const late = { ...failed, id: `evt_late${randomBytes(8).toString('hex')}` };
    expect((await rig.send(JSON.stringify(late))).status).toBe(200);
    await rig.settled();
    expect((await rig.svc.deps.store.inbox.get(late.id))!.processedAt).not.toBeNull();
    expect((await rig.svc.deps.store.payments.get(id))!.status).toBe('succeeded');
  });

  it('an intent paid entirely in the dashboard is learnt with no owner', async () => {
    const id = await paidInDashboard(rig, 'pm_card_visa', 4200);
    await statusBecomes(id, 'succeeded');
    expect(await rig.svc.deps.store.payments.get(id)).toMatchObject({
      owner: '',
      amount: 4200,
      kind: 'payment_intent',
    });
  });

  it('checkout.session.completed: a session paid on the hosted page is complete, its intent succeeded', async () => {
    const created = await postJson(`${rig.svc.url}/create-checkout-session`, {
      ...readme.requests.createCheckoutSession,
      metadata: { order_id: 'wh-1' },
    });
    expect(created.status).toBe(200);
    const sessionId = created.json.id as string;
    expect((await ledgerStatus(sessionId)).status).toBe('open');
    const page = await payOnHostedPage(created.json.url as string);
    expect(page.status).toBe(303);
    await statusBecomes(sessionId, 'complete');
    const session = (await rig.svc.deps.store.payments.get(sessionId))!;
    // The customer's address stays at Stripe (GET /checkout-session reads it there): the ledger keeps none.
    expect(session).toMatchObject({ customerEmail: null, amount: 10000 });
    expect(session.paymentIntentId).toMatch(/^pi_/);
    await statusBecomes(session.paymentIntentId!, 'succeeded');
    expect(await rig.svc.deps.store.payments.get(session.paymentIntentId!)).toMatchObject({
      metadata: { order_id: 'wh-1' },
    });
  });

  it('checkout.session.expired: a session expired in the dashboard is expired', async () => {
    const created = await postJson(
      `${rig.svc.url}/create-checkout-session`,
      readme.requests.createCheckoutSession,
    );
    const sessionId = created.json.id as string;
    await rig.dashboard.checkout.sessions.expire(sessionId);
    await statusBecomes(sessionId, 'expired');
  });
});

describe.skipIf(!rabbit)(
  'a checkout payment whose intent event comes before the session event (API keys on)',
  () => {
    // The test delivers the events itself, so it chooses their order.
    const rig = useRig('sqlite', 'payments-order', { env: { API_AUTH: 'on' } });
    let key: string;
    beforeAll(async () => {
      key = (await createKey(rig.svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
    });

    it("the intent is the session owner's at once: it can be read and refunded before checkout.session.completed", async () => {
      const auth = { authorization: `Bearer ${key}` };
      const created = await postWithHeaders(
        `${rig.svc.url}/create-checkout-session`,
        readme.requests.createCheckoutSession,
        auth,
      );
      expect(created.status).toBe(200);
      const page = await payOnHostedPage(created.json.url as string);
      expect(page.status).toBe(303);
      const session = await rig.dashboard.checkout.sessions.retrieve(created.json.id as string);
      const pi = session.payment_intent as string;
      const [succeeded] = (await sandboxEvents(rig, new Set(['payment_intent.succeeded']))).filter(
        (e) => (e.data.object as Stripe.PaymentIntent).id === pi,
      );
      expect((await rig.send(JSON.stringify(succeeded))).status).toBe(200);
      await until(
        async () => (await rig.svc.deps.store.payments.get(pi))?.status === 'succeeded',
        'the intent',
      );

      const read = await fetch(`${rig.svc.url}/payment-intent/${pi}`, { headers: auth });
      expect(read.status).toBe(200);
      expect(await read.json()).toMatchObject({ id: pi, status: 'succeeded', amount: 10000 });
      const refund = await postWithHeaders(
        `${rig.svc.url}/refund`,
        { payment_intent_id: pi, amount: 2500 },
        auth,
      );
      expect(refund.status).toBe(200);
      expect(refund.json).toMatchObject({ refund: { amount: 2500, status: 'succeeded' } });
      // Another owner's key still sees nothing.
      const other = (await createKey(rig.svc.deps.store.apiKeys, { owner: 'other', kind: 'secret' })).key;
      expect(
        (
          await fetch(`${rig.svc.url}/payment-intent/${pi}`, {
            headers: { authorization: `Bearer ${other}` },
          })
        ).status,
      ).toBe(404);
    });
  },
);

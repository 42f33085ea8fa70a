/**
 * With API keys on, a payment intent event of a checkout session that names no owner (made in the dashboard, a
 * Payment Link) after the session's own event was applied (the ledger holds the session, owner ''). Learning the
 * intent's owner (ownerOfIntent) recorded the session again on every read, which rewrote the intent's row each time
 * between the applier's look at the row and its compare-and-set write: the applier read the intent 4 times (and
 * listed its sessions 4 times) at Stripe for one event, never wrote what it read, and logged that the intent "kept
 * being written". It is read once, and what it read is written.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { payOnHostedPage } from '../helpers/http.js';
import { databases, rabbitReady, sandboxEvents, useRig, type Rig } from './support/rig.js';

const rabbit = await rabbitReady('intent event of a checkout session naming no owner');
const dbs = await databases();

/** A paid checkout session made in the dashboard (naming no owner), its checkout.session.completed applied. */
async function dashboardSessionApplied(rig: Rig): Promise<Stripe.Checkout.Session> {
  const session = await rig.dashboard.checkout.sessions.create({
    mode: 'payment',
    line_items: [
      { quantity: 1, price_data: { currency: 'usd', unit_amount: 1500, product_data: { name: 'Mug' } } },
    ],
    success_url: 'https://shop.example/ok',
    cancel_url: 'https://shop.example/no',
  });
  expect((await payOnHostedPage(session.url!)).status).toBeLessThan(400);
  const completed = (await sandboxEvents(rig, new Set(['checkout.session.completed']))).find(
    (e) => (e.data.object as { id: string }).id === session.id,
  )!;
  expect((await rig.send(JSON.stringify(completed))).status).toBe(200);
  await rig.settled();
  return session;
}

/** Applies `pi`'s payment_intent.succeeded: the calls it made at Stripe and the lines the service logged. */
async function intentSucceededApplied(rig: Rig, pi: string): Promise<{ calls: string[]; lines: string[] }> {
  const before = rig.sandbox.capturedRequests().length;
  const linesBefore = rig.svc.lines.length;
  const succeeded = (await sandboxEvents(rig, new Set(['payment_intent.succeeded']))).find(
    (e) => (e.data.object as { id: string }).id === pi,
  )!;
  expect((await rig.send(JSON.stringify(succeeded))).status).toBe(200);
  await rig.settled();
  const calls = rig.sandbox
    .capturedRequests()
    .slice(before)
    .map((r) => `${r.method} ${r.route ?? r.path}`);
  return { calls, lines: rig.svc.lines.slice(linesBefore) };
}

describe.skipIf(!rabbit).each(dbs)(
  'an intent event of a session naming no owner, API keys on, on %s',
  (db) => {
    const rig = useRig(db, `intent-ownerless-checkout.${db}`, { env: { API_AUTH: 'on' } });

    it('reads the intent at Stripe once and writes what it read', async () => {
      const session = await dashboardSessionApplied(rig);
      const pi = (await rig.svc.deps.store.payments.get(session.id))!.paymentIntentId!;
      expect(pi).toMatch(/^pi_/);
      expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ owner: '', status: 'succeeded' });

      const { calls, lines } = await intentSucceededApplied(rig, pi);

      expect(calls.filter((c) => c === 'GET /v1/payment_intents/:intent')).toHaveLength(1);
      expect(calls.filter((c) => c === 'GET /v1/checkout/sessions')).toHaveLength(1);
      expect(lines.filter((l) => l.includes('kept being written'))).toEqual([]);
      expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ owner: '', status: 'succeeded' });
    });
  },
);

describe.skipIf(!rabbit).each(dbs)(
  'an intent event of a session naming no owner, API keys on and UNOWNED_PAYMENTS_OWNER set, on %s',
  (db) => {
    const rig = useRig(db, `intent-ownerless-checkout-owned.${db}`, {
      env: { API_AUTH: 'on', UNOWNED_PAYMENTS_OWNER: 'shop' },
    });

    it("records the session and its intent under that owner, and the intent's event reads it once", async () => {
      const session = await dashboardSessionApplied(rig);
      expect(await rig.svc.deps.store.payments.get(session.id)).toMatchObject({ owner: 'shop' });
      const pi = (await rig.svc.deps.store.payments.get(session.id))!.paymentIntentId!;
      expect(pi).toMatch(/^pi_/);
      expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ owner: 'shop', status: 'succeeded' });

      const { calls, lines } = await intentSucceededApplied(rig, pi);

      expect(calls.filter((c) => c === 'GET /v1/payment_intents/:intent')).toHaveLength(1);
      expect(lines.filter((l) => l.includes('kept being written'))).toEqual([]);
      expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ owner: 'shop', status: 'succeeded' });
    });
  },
);

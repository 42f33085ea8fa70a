/**
 * A payment intent event whose row keeps being written by others while the intent is read from Stripe (each write
 * landing between the applier's look at the row and its own write): the applier reads the intent again at most 3
 * times more, never writes over those other writes, then leaves the row to them with an info line, and the event
 * counts as applied. A GET /payment-intent/{id} then brings the row to Stripe's status.
 */
import { describe, expect, it } from 'vitest';
import type { PaymentsService } from '../../src/payments/service.js';
import { createEventApplier } from '../../src/webhooks/apply.js';
import { captureLogger } from '../helpers/log-capture.js';
import { intentNeeding3ds } from './support/intent-events.js';
import { databases, getJson, rabbitReady, sandboxEvents, useRig } from './support/rig.js';

const rabbit = await rabbitReady('payment intent events whose row keeps being written');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('payment intent event, its row rewritten meanwhile, on %s', (db) => {
  const rig = useRig(db, `intent-rewritten.${db}`);

  it('tries 4 times in all, each after reading the intent again, writes over none of the other writes, logs that it left it', async () => {
    const pi = await intentNeeding3ds(rig);
    const event = (await sandboxEvents(rig, new Set(['payment_intent.requires_action']))).find(
      (e) => (e.data.object as { id: string }).id === pi.id,
    )!;
    const { store, stripe, payments, refunds } = rig.svc.deps;
    await store.payments.upsert({
      id: pi.id,
      kind: 'payment_intent',
      amount: 2500,
      currency: 'usd',
      status: 'requires_action',
    });

    // Another writer's status lands before each of this applier's writes, a different one each time.
    const others = ['processing', 'requires_confirmation'];
    const written: string[] = [];
    const interfered: PaymentsService = {
      ...payments,
      async applyStripePaymentIntent(read, seen) {
        const other = others[written.length % others.length]!;
        written.push(other);
        await store.payments.update(pi.id, { status: other });
        return payments.applyStripePaymentIntent(read, seen);
      },
    };
    const { logger, lines } = captureLogger('info');
    const apply = createEventApplier({ stripe, payments: interfered, refunds, logger, store });

    expect(await apply(event)).toBe('applied');
    expect(written).toHaveLength(4);
    expect(await store.payments.get(pi.id)).toMatchObject({ status: written.at(-1) });
    const left = lines.map((l) => JSON.parse(l) as { level: number; msg: string; eventId?: string });
    expect(left).toContainEqual(
      expect.objectContaining({
        level: 30,
        eventId: event.id,
        msg: expect.stringContaining('kept being written while it was read from Stripe'),
      }),
    );

    const read = await getJson(`${rig.svc.url}/payment-intent/${pi.id}`);
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ id: pi.id, status: 'requires_action' });
    expect(await store.payments.get(pi.id)).toMatchObject({ status: 'requires_action' });
  });
});

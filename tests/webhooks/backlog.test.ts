/**
 * Webhooks arriving faster than they can be applied. Each is stored and acknowledged at once and applied
 * afterwards, 8 at a time; the rest waited in the process's memory, each with its payload, in a line with no end.
 * While Stripe's API hangs (every read waits out its timeout) Stripe's deliveries keep coming: 3,000 waiting held
 * about 100 MB of heap, and the line grew for as long as the outage lasted.
 *
 * Past DEFAULT_MAX_WAITING an event is still stored and acknowledged (200: it is not lost), but left to the retry
 * sweep, which takes it once the line has room. One warning says so, not one per event.
 */
import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_WAITING } from '../../src/webhooks/service.js';
import { databases, paidInDashboard, pool, rabbitReady, useRig } from './support/rig.js';

const rabbit = await rabbitReady('webhook backlog');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('webhooks arriving while Stripe hangs, on %s', (db) => {
  const rig = useRig(db, `backlog.${db}`);

  /** Holds the service's reads of payment intents at "Stripe" until the returned function is called. */
  function holdIntentReads(): () => void {
    const intents = rig.svc.deps.stripe.paymentIntents;
    const retrieve = intents.retrieve.bind(intents);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    intents.retrieve = (async (...args: Parameters<typeof retrieve>) => {
      await gate;
      return retrieve(...args);
    }) as typeof intents.retrieve;
    return () => {
      intents.retrieve = retrieve as typeof intents.retrieve;
      release();
    };
  }

  it('are all stored and acknowledged; the process holds a bounded line, and the sweep applies the rest', async () => {
    const pi = await paidInDashboard(rig, 'pm_card_visa', 1000);
    const intent: Stripe.PaymentIntent = await rig.dashboard.paymentIntents.retrieve(pi);
    const ids = Array.from(
      { length: DEFAULT_MAX_WAITING + 40 },
      () => `evt_backlog${randomBytes(8).toString('hex')}`,
    );
    const release = holdIntentReads();
    try {
      const statuses = await pool(ids, 8, async (id) => {
        const res = await rig.send(
          JSON.stringify({
            id,
            object: 'event',
            type: 'payment_intent.succeeded',
            created: Math.floor(Date.now() / 1000),
            livemode: false,
            data: { object: intent },
          }),
        );
        await res.arrayBuffer();
        return res.status;
      });
      expect(new Set(statuses)).toEqual(new Set([200]));
      expect(await rig.svc.deps.store.inbox.countUnprocessed()).toBe(ids.length);
      expect(rig.svc.deps.webhooks.waiting()).toBeLessThanOrEqual(DEFAULT_MAX_WAITING);
      const full = rig.svc.lines.filter((l) => l.includes('new ones are stored and left to the retry sweep'));
      expect(full).toHaveLength(1);
    } finally {
      release();
    }
    // Events left to the sweep wait out its grace for fresh events and the lease its rounds put on them meanwhile.
    await rig.settled(120_000);
    for (const id of ids)
      expect((await rig.svc.deps.store.inbox.get(id))?.processedAt).toEqual(expect.any(String));
    expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ status: 'succeeded' });
    // The line has room again: the next event is applied on arrival, and the log says so.
    const next = `evt_backlog${randomBytes(8).toString('hex')}`;
    const res = await rig.send(
      JSON.stringify({
        id: next,
        object: 'event',
        type: 'payment_intent.succeeded',
        created: Math.floor(Date.now() / 1000),
        livemode: false,
        data: { object: intent },
      }),
    );
    expect(res.status).toBe(200);
    await rig.svc.deps.webhooks.idle();
    expect((await rig.svc.deps.store.inbox.get(next))?.processedAt).toEqual(expect.any(String));
    expect(rig.svc.lines.some((l) => l.includes('webhook events are applied on arrival again'))).toBe(true);
  }, 180_000);
});

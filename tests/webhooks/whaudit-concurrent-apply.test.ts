/**
 * Two processes can apply one event at the same time: the retry sweep of one takes an event another process
 * received and still has waiting in memory (a fresh event has no lease, only a 10 s grace by the receiver's clock;
 * a swept one is leased 30 s and not renewed while it waits). Applying must then be idempotent: the events of a
 * dashboard refund that succeeded and then failed (the bank returned it), each applied by several appliers at
 * once over one ledger, leave one refund, failed, its failure announced and counted once.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { createEventApplier } from '../../src/webhooks/apply.js';
import {
  databases,
  getJson,
  paidThroughService,
  rabbitReady,
  sandboxEvents,
  useRig,
  type Rig,
} from './support/rig.js';

const rabbit = await rabbitReady('one event applied by two processes at once');
const dbs = await databases();

async function failedCount(rig: Rig): Promise<number> {
  const text = await (await fetch(`${rig.svc.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('payments_refunds_final_total{status="failed"}'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe.skipIf(!rabbit).each(dbs)('one event applied by several processes at once, on %s', (db) => {
  const rig = useRig(db, `whaudit-concurrent.${db}`);

  it('a dashboard refund that succeeded then failed: one row, failed, announced and counted failed once', async () => {
    const pi = await paidThroughService(rig, 'pm_card_refundFail', 3000);
    const made = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 1000 });
    await rig.settleRefund(made.id);
    const events = (
      await sandboxEvents(
        rig,
        new Set([
          'refund.created',
          'refund.updated',
          'refund.failed',
          'charge.refunded',
          'charge.refund.updated',
        ]),
      )
    ).filter((e) => {
      const o = e.data.object as { id: string; payment_intent?: string | null };
      return o.id === made.id || o.payment_intent === pi;
    });
    expect(events.length).toBeGreaterThanOrEqual(4);
    await rig.drain(rig.topology.responses);
    const failedBefore = await failedCount(rig);

    // As many appliers as processes, each with the service's own parts, as another process has its own.
    const { stripe, payments, refunds, logger } = rig.svc.deps;
    const appliers = [1, 2, 3].map(() => createEventApplier({ stripe, payments, refunds, logger }));
    // Every applier applies every event, all at once, each in its own order.
    await Promise.all(
      appliers.flatMap((apply, i) =>
        (i % 2 === 0 ? events : [...events].reverse()).map((e: Stripe.Event) => apply(e)),
      ),
    );
    rig.svc.deps.relay.notify();
    await rig.settled();

    const rows = await rig.svc.deps.store.refunds.listForPaymentIntent(pi);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ stripeRefundId: made.id, status: 'failed', amount: 1000 });
    const requestId = `stripe:${made.id}`;
    const statuses = (await rig.drain(rig.topology.responses))
      .map((m) => m.body as { request_id: string; status: string })
      .filter((b) => b.request_id === requestId)
      .map((b) => b.status);
    // Announced failed once; `succeeded` at most once before it, if a succeeded snapshot came first.
    expect(statuses.filter((s) => s === 'failed')).toEqual(['failed']);
    expect(statuses.filter((s) => s !== 'failed').every((s) => s === 'succeeded')).toBe(true);
    expect(statuses.filter((s) => s === 'succeeded').length).toBeLessThanOrEqual(1);
    expect(statuses.at(-1)).toBe('failed');
    expect(await failedCount(rig)).toBe(failedBefore + 1);
    const status = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
    expect(status.json).toMatchObject({ status: 'failed', failure_reason: 'expired_or_canceled_card' });
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(0);
  });
});

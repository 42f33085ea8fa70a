/**
 * The redelivery storm: refunds made every way the service meets them (sync, async through RabbitMQ,
 * in the dashboard on known and unknown payments; settling at once, later, or failing later), then
 * every one of their events delivered three times in shuffled order by concurrent senders. Whatever
 * the order, the ledger must end where Stripe is, and every side effect must happen once.
 */
import type Stripe from 'stripe';
import { beforeAll, expect, it } from 'vitest';
import type { Db } from '../../helpers/service.js';
import {
  getJson,
  paidInDashboard,
  paidThroughService,
  pool,
  postJson,
  sandboxEvents,
  shuffled,
  useRig,
  until,
} from './rig.js';

export const REFUND_EVENT_TYPES = new Set([
  'refund.created',
  'refund.updated',
  'refund.failed',
  'charge.refunded',
  'charge.refund.updated',
]);

const CARDS = ['pm_card_visa', 'pm_card_pendingRefund', 'pm_card_refundFail'] as const;
const WAYS = ['sync', 'async', 'dashboard-known', 'dashboard-unknown'] as const;
type Way = (typeof WAYS)[number];

interface Made {
  way: Way;
  card: string;
  pi: string;
  amount: number;
  /** The service's request id, for refunds made through it. */
  requestId: string | null;
  refundId: string | null;
}

const FINAL = new Set(['succeeded', 'failed', 'canceled']);

export function orderingSuite(db: Db, opts: { refunds: number; copies: number; senders: number }): void {
  const rig = useRig(db, `order.${db}`);
  let eventsQueue: string;
  beforeAll(async () => {
    eventsQueue = await rig.subscribe('#');
  });

  async function make(i: number): Promise<Made> {
    const way = WAYS[i % WAYS.length]!;
    const card = CARDS[Math.floor(i / WAYS.length) % CARDS.length]!;
    const amount = 1000 + i;
    // Every third refund is partial, so amounts and "what is left" are exercised too.
    const refundAmount = i % 3 === 0 ? 400 : undefined;
    const pi =
      way === 'dashboard-unknown'
        ? await paidInDashboard(rig, card, amount)
        : await paidThroughService(rig, card, amount);
    if (way === 'sync' || way === 'async') {
      const requestId = `storm-${db}-${i}`;
      const res = await postJson(`${rig.svc.url}/${way === 'sync' ? 'refund' : 'refund-async'}`, {
        payment_intent_id: pi,
        request_id: requestId,
        ...(refundAmount ? { amount: refundAmount } : {}),
      });
      expect(res.status).toBe(way === 'sync' ? 200 : 202);
      return { way, card, pi, amount, requestId, refundId: null };
    }
    const refund = await rig.dashboard.refunds.create({
      payment_intent: pi,
      ...(refundAmount ? { amount: refundAmount } : {}),
    });
    return { way, card, pi, amount, requestId: null, refundId: refund.id };
  }

  it(
    `${opts.refunds} refunds, every event delivered ${opts.copies}× shuffled by ${opts.senders} senders: ledger = Stripe, effects once`,
    { timeout: 150_000 },
    async () => {
      const t0 = Date.now();
      const made = await pool(
        Array.from({ length: opts.refunds }, (_, i) => i),
        8,
        make,
      );
      // Async refunds are made by the worker; wait until each has its Stripe refund.
      await until(async () => {
        const open = await rig.svc.deps.store.refunds.listByStatus(['queued', 'processing'], 10);
        return open.length === 0;
      }, 'the worker to make the queued refunds');
      for (const m of made.filter((x) => x.requestId)) {
        m.refundId = (await rig.svc.deps.store.refunds.get(m.requestId!))!.stripeRefundId;
        expect(m.refundId).toMatch(/^re_/);
      }
      // Settle the pending ones in Stripe: the service hears of it only through the events sent below.
      const sandboxRefunds = new Map<string, Stripe.Refund>();
      for await (const r of rig.dashboard.refunds.list({ limit: 100 })) sandboxRefunds.set(r.id, r);
      expect(sandboxRefunds.size).toBe(opts.refunds);
      // pm_card_refundFail refunds begin `succeeded` and fail later (docs.stripe.com/testing#refunds). They are
      // left `succeeded` here; tests/webhooks/settlement.test.ts covers the ledger following them to failed.
      for (const r of sandboxRefunds.values()) if (r.status === 'pending') await rig.settleRefund(r.id);
      for await (const r of rig.dashboard.refunds.list({ limit: 100 })) sandboxRefunds.set(r.id, r);
      const statuses = [...sandboxRefunds.values()].map((r) => r.status);
      expect(statuses.every((s) => FINAL.has(s ?? ''))).toBe(true);

      const events = await sandboxEvents(rig, REFUND_EVENT_TYPES);
      const seed = Date.now() % 2 ** 31;
      const deliveries = shuffled(
        events.flatMap((e) => Array.from({ length: opts.copies }, () => JSON.stringify(e))),
        seed,
      );
      const t1 = Date.now();
      const answers = await pool(deliveries, opts.senders, async (payload) => {
        const res = await rig.send(payload);
        return { status: res.status, body: (await res.json()) as { success: boolean; duplicate?: boolean } };
      });
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      expect(answers.filter((a) => !a.body.duplicate)).toHaveLength(events.length);
      const t2 = Date.now();
      await rig.settled(90_000);
      console.info(
        `webhook storm on ${db}: ${events.length} events, ${deliveries.length} deliveries (seed ${seed}); ` +
          `setup ${t1 - t0} ms, deliveries ${t2 - t1} ms, settling ${Date.now() - t2} ms`,
      );

      // Ledger = Stripe, refund by refund, and nothing else in the ledger.
      const store = rig.svc.deps.store;
      const counts = await rig.counts();
      expect(counts.refunds).toBe(opts.refunds);
      expect(counts.webhook_events).toBe(events.length);
      for (const r of sandboxRefunds.values()) {
        const row = await store.refunds.getByStripeId(r.id);
        expect(row, r.id).not.toBeNull();
        expect({ id: r.id, status: row!.status, amount: row!.amount }).toEqual({
          id: r.id,
          status: r.status,
          amount: r.amount,
        });
        if (r.status === 'failed') expect(row!.failureReason).toBe(r.failure_reason);
      }
      for (const m of made) {
        const r = sandboxRefunds.get(m.refundId!)!;
        const row = (await store.refunds.getByStripeId(r.id))!;
        expect(row.mode).toBe(m.way === 'sync' || m.way === 'async' ? m.way : 'external');
        if (m.requestId) {
          const status = await getJson(`${rig.svc.url}/refund-status/${m.requestId}`);
          expect(status.json.status).toBe(r.status);
        }
        // What counts against the payment is what Stripe has not given back.
        expect(await store.refunds.sumCommitted(m.pi)).toBe(r.status === 'failed' ? 0 : r.amount);
      }

      // One stripe.events message per event id, none twice.
      const published = await rig.drain(eventsQueue);
      expect(published.map((p) => p.messageId).sort()).toEqual(events.map((e) => e.id).sort());
      for (const p of published) expect(p.routingKey).toBe(events.find((e) => e.id === p.messageId)!.type);

      // One outcome message per final state per refund, whichever path got it there first.
      const outcomes = await rig.drain(rig.topology.responses);
      expect(new Set(outcomes.map((o) => o.messageId)).size).toBe(outcomes.length);
      const finals = new Map<string, string[]>();
      for (const o of outcomes) {
        const body = o.body as { refund_id: string; status: string };
        if (FINAL.has(body.status))
          finals.set(body.refund_id, [...(finals.get(body.refund_id) ?? []), body.status]);
      }
      for (const r of sandboxRefunds.values()) expect(finals.get(r.id), r.id).toEqual([r.status]);
    },
  );
}

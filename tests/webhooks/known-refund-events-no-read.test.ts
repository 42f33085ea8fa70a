/**
 * A final refund snapshot (succeeded) is read from Stripe before it is applied unless the ledger knows the refund
 * with the same amount and currency (knownToLedger, src/webhooks/apply.ts). The normal flow must not pay for that
 * check: every event of a refund the service made (sync or queued), and every later event of a dashboard refund
 * the ledger has learnt, is applied without reading the refund from Stripe; only a dashboard refund's first event
 * costs one read.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import {
  getJson,
  paidInDashboard,
  paidThroughService,
  postJson,
  rabbitReady,
  until,
  useRig,
  type Rig,
} from './support/rig.js';

const rabbit = await rabbitReady('refund events the ledger knows');

/** The refund events the sandbox holds for refund `id`, oldest first. */
async function refundEvents(rig: Rig, id: string): Promise<Stripe.Event[]> {
  const out: Stripe.Event[] = [];
  for await (const e of rig.dashboard.events.list({ limit: 100 })) {
    if (e.type.startsWith('refund.') || e.type.startsWith('charge.refund')) {
      const obj = e.data.object as { id?: string; object?: string };
      if (obj.object === 'refund' && obj.id === id) out.push(e);
    }
  }
  return out.reverse();
}

/** The refund reads (GET /v1/refunds...) the service made at the sandbox while `fn` ran. */
async function refundReadsDuring(rig: Rig, fn: () => Promise<void>): Promise<string[]> {
  const marker = rig.sandbox.capturedRequests().at(-1)?.requestId;
  await fn();
  const all = rig.sandbox.capturedRequests();
  const since = all.slice(all.findIndex((c) => c.requestId === marker) + 1);
  return since
    .filter((c) => c.method === 'GET' && (c.route ?? '').startsWith('/v1/refunds'))
    .map((c) => c.path);
}

async function deliver(rig: Rig, events: Stripe.Event[]): Promise<void> {
  for (const e of events) expect((await rig.send(JSON.stringify(e))).status).toBe(200);
  await rig.settled();
}

describe.skipIf(!rabbit)('refund events of refunds the ledger knows (sqlite)', () => {
  const rig = useRig('sqlite', 'known-refund-no-read');

  it('a refund the service made: its events are applied without reading it from Stripe', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 2500);
    const made = await postJson(`${rig.svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: 'known-sync',
    });
    expect(made.status).toBe(200);
    const refundId = (made.json.refund as { id: string }).id;
    const events = await refundEvents(rig, refundId);
    expect(events.length).toBeGreaterThan(0);
    expect(events.some((e) => (e.data.object as Stripe.Refund).status === 'succeeded')).toBe(true);
    expect(await refundReadsDuring(rig, () => deliver(rig, events))).toEqual([]);
    expect((await getJson(`${rig.svc.url}/refund-status/known-sync`)).json).toMatchObject({
      status: 'succeeded',
      amount: 1000,
      currency: 'usd',
      refund_id: refundId,
    });
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1000);
  });

  it('a queued refund (POST /refund-async): its events are applied without reading it from Stripe', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 2500, 'eur');
    const queued = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 700,
      request_id: 'known-async',
    });
    expect(queued.status).toBe(202);
    const done = await until(async () => {
      const s = (await getJson(`${rig.svc.url}/refund-status/known-async`)).json;
      return s.status === 'succeeded' ? s : null;
    }, 'the queued refund to succeed');
    const refundId = done.refund_id as string;
    await rig.settled();
    const events = await refundEvents(rig, refundId);
    expect(events.length).toBeGreaterThan(0);
    expect(await refundReadsDuring(rig, () => deliver(rig, events))).toEqual([]);
    expect((await getJson(`${rig.svc.url}/refund-status/known-async`)).json).toMatchObject({
      status: 'succeeded',
      amount: 700,
      currency: 'eur',
    });
  });

  it('a dashboard refund: its first event is read from Stripe once, a repeat of it costs no read', async () => {
    const pi = await paidInDashboard(rig, 'pm_card_visa', 3000);
    const refund = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 1200 });
    expect(refund.status).toBe('succeeded');
    const events = await refundEvents(rig, refund.id);
    expect(events.length).toBeGreaterThan(0);
    const first = await refundReadsDuring(rig, () => deliver(rig, [events[0]!]));
    expect(first).toEqual([`/v1/refunds/${refund.id}`]);
    // The same snapshot again (Stripe redelivers under a new event id when asked to resend): the ledger knows it now.
    const again = { ...events[0]!, id: `${events[0]!.id}_resent` };
    expect(await refundReadsDuring(rig, () => deliver(rig, [again, ...events.slice(1)]))).toEqual([]);
    expect((await getJson(`${rig.svc.url}/refund-status/stripe:${refund.id}`)).json).toMatchObject({
      status: 'succeeded',
      amount: 1200,
      currency: 'usd',
    });
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1200);
  });
});

/**
 * A refund the worker gave up on (its last call to Stripe lost, the refund not listed yet) is marked failed and
 * announced so. Stripe may have made it after all, and a refund of a card that cannot take it (an expired or
 * closed card) then fails at Stripe too. When that news came (a webhook, or `npm run reconcile`), the ledger put
 * the Stripe id on the row and counted the move failed → failed as a new one: a second `failed` outcome message
 * on `stripe_refund_responses` (a consumer acting on failures acted twice) and a second count in
 * `payments_refunds_final_total{status="failed"}`. The row still takes the Stripe id and reason; nothing is
 * announced again.
 */
import { describe, expect, it } from 'vitest';
import {
  databases,
  getJson,
  paidThroughService,
  rabbitReady,
  sandboxEvents,
  useRig,
  type Rig,
} from './support/rig.js';

const rabbit = await rabbitReady('a given-up refund found failed at Stripe');
const dbs = await databases();

async function failedCount(rig: Rig): Promise<number> {
  const text = await (await fetch(`${rig.svc.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('payments_refunds_final_total{status="failed"}'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe.skipIf(!rabbit).each(dbs)('a given-up refund that Stripe made and then failed, on %s', (db) => {
  // The test delivers the events itself, so the worker never hears of the refund.
  const rig = useRig(db, `gave-up-failed.${db}`);

  it('takes the Stripe id and reason, and is announced and counted failed once', async () => {
    const pi = await paidThroughService(rig, 'pm_card_refundFail', 3000);
    const requestId = `given-up-${db}`;
    // As the worker leaves a refund it gave up on: failed, no Stripe id, its failure announced.
    await rig.svc.deps.store.refunds.insert({
      requestId,
      owner: '',
      paymentIntentId: pi,
      amount: 1200,
      currency: 'usd',
      status: 'queued',
      mode: 'async',
    });
    expect(await rig.svc.deps.store.refunds.giveUp(requestId, 'retries_exhausted')).toBe(true);
    await rig.drain(rig.topology.responses);
    const failedBefore = await failedCount(rig);

    // The lost call had made it (the worker's calls name the request in the metadata); it then fails.
    const made = await rig.dashboard.refunds.create({
      payment_intent: pi,
      amount: 1200,
      metadata: { request_id: requestId },
    });
    await rig.settleRefund(made.id);
    const failedEvent = (await sandboxEvents(rig, new Set(['refund.failed']))).find(
      (e) => (e.data.object as { id: string }).id === made.id,
    );
    expect(failedEvent).toBeDefined();
    expect((await rig.send(JSON.stringify(failedEvent))).status).toBe(200);
    await rig.settled();

    const status = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
    expect(status.json).toMatchObject({
      status: 'failed',
      refund_id: made.id,
      failure_reason: 'expired_or_canceled_card',
    });
    const outcomes = (await rig.drain(rig.topology.responses)).filter(
      (m) => (m.body as { request_id: string }).request_id === requestId,
    );
    expect(outcomes).toEqual([]);
    expect(await failedCount(rig)).toBe(failedBefore);
  });
});

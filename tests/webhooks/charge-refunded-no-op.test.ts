/**
 * Each charge.refunded event is applied by listing every refund of the charge at Stripe and applying each
 * (src/webhooks/apply.ts). A refund that ended before is then applied with nothing new, and GET /refund-status must
 * show it as it was: its `updated_at` ("when the refund last changed") moved to the time of every later refund of
 * the same payment.
 */
import { describe, expect, it } from 'vitest';
import {
  databases,
  getJson,
  paidThroughService,
  postJson,
  rabbitReady,
  sandboxEvents,
  useRig,
  type Rig,
} from './support/rig.js';

const rabbit = await rabbitReady('charge.refunded applied again');
const TYPES = new Set(['charge.refunded', 'refund.created', 'refund.updated']);

/** Sends every refund event the sandbox holds (those sent before are answered 200 and not applied again). */
async function deliverAll(rig: Rig): Promise<void> {
  for (const e of await sandboxEvents(rig, TYPES))
    expect((await rig.send(JSON.stringify(e))).status).toBe(200);
  await rig.settled();
}

for (const db of await databases()) {
  describe.skipIf(!rabbit)(`a refund that ended, listed again by a later charge.refunded (${db})`, () => {
    const rig = useRig(db, 'charge-refunded-no-op');

    it('keeps its updated_at and status while the later refund is recorded', async () => {
      const pi = await paidThroughService(rig, 'pm_card_visa', 2500);
      const first = await postJson(`${rig.svc.url}/refund`, {
        payment_intent_id: pi,
        amount: 1000,
        request_id: `no-op-first-${db}`,
      });
      expect(first.status).toBe(200);
      await deliverAll(rig);
      const before = (await getJson(`${rig.svc.url}/refund-status/no-op-first-${db}`)).json;
      expect(before.status).toBe('succeeded');

      await new Promise((r) => setTimeout(r, 50)); // a later millisecond, for any write to show
      const second = await postJson(`${rig.svc.url}/refund`, {
        payment_intent_id: pi,
        amount: 500,
        request_id: `no-op-second-${db}`,
      });
      expect(second.status).toBe(200);
      await deliverAll(rig);

      const after = (await getJson(`${rig.svc.url}/refund-status/no-op-first-${db}`)).json;
      expect(after).toEqual(before);
      expect((await getJson(`${rig.svc.url}/refund-status/no-op-second-${db}`)).json.status).toBe(
        'succeeded',
      );
      expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1500);
    });
  });
}

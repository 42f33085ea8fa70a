/**
 * Outbox rows outlive the version that wrote them: during a rolling update a process of the earlier version writes
 * them beside this one, and after a broker outage across an upgrade this version's relay publishes what the
 * earlier one wrote. Outcome rows written before outcomes named their owner (b3aceb6) have no `owner`, which
 * RefundOutcomeMessage requires; what a consumer reads from stripe_refund_responses must still match the contract.
 * The rows are written through the store, whose outbox and ledger tables the two versions share unchanged.
 */
import { describe, expect, it } from 'vitest';
import { validate } from '../helpers/contract.js';
import { databases, rabbitReady, useRig, until, type AmqpMessage } from '../webhooks/support/rig.js';

const rabbit = await rabbitReady('outbox rows of an earlier version');

const KEY = `psk_${'c'.repeat(40)}`;

describe.skipIf(!rabbit).each(await databases())(
  'outcome rows an earlier version left in the outbox [%s]',
  (db) => {
    const rig = useRig(db, 'earlier-outbox', {
      env: { API_AUTH: 'on', API_KEYS: `shop-old|refunds:read|${KEY}`, RATE_LIMIT_PER_MINUTE: '0' },
    });

    /** A succeeded refund, and its outcome row as the version before b3aceb6 wrote it (RefundService.announce). */
    async function writtenByEarlierVersion(owner: string, requestId: string): Promise<string> {
      const { store } = rig.svc.deps;
      const key = owner ? `${owner}/${requestId}` : requestId;
      const refund = await store.refunds.insert({
        requestId: key,
        owner,
        paymentIntentId: 'pi_old_1',
        amount: 1500,
        currency: 'usd',
        status: 'succeeded',
        stripeRefundId: `re_old_${requestId}`,
        mode: 'async',
      });
      const messageId = `${key}#succeeded#${refund.updatedAt}`;
      await store.outbox.add({
        destination: rig.topology.responses,
        routingKey: rig.topology.responses,
        messageId,
        payload: {
          success: true,
          request_id: requestId,
          refund_id: refund.stripeRefundId,
          status: 'succeeded',
          amount: 1500,
          currency: 'usd',
          payment_intent_id: 'pi_old_1',
          failure_reason: null,
        },
      });
      return messageId;
    }

    it('are published with the owner the contract requires', async () => {
      const owned = await writtenByEarlierVersion('shop-old', 'order-7');
      const ownerless = await writtenByEarlierVersion('', 'order-8');
      const seen: AmqpMessage[] = [];
      await until(async () => {
        seen.push(...(await rig.drain(rig.topology.responses)));
        return [owned, ownerless].every((id) => seen.some((m) => m.messageId === id));
      }, 'both outcome messages');

      const bodies = Object.fromEntries(seen.map((m) => [m.messageId, m.body]));
      expect({
        owned: validate('#/components/schemas/RefundOutcomeMessage', bodies[owned]),
        ownerless: validate('#/components/schemas/RefundOutcomeMessage', bodies[ownerless]),
      }).toEqual({ owned: [], ownerless: [] });
      expect(bodies[owned]).toMatchObject({ owner: 'shop-old', request_id: 'order-7', status: 'succeeded' });
      expect(bodies[ownerless]).toMatchObject({ owner: null, request_id: 'order-8', status: 'succeeded' });
    });
  },
);

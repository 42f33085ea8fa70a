/**
 * Client secrets are taken out of every verified event before it is stored or published (src/webhooks/client-
 * secrets.ts). A refund's `metadata.request_id` is the service's own tag, by which a webhook that beats the
 * service's own write finds the ledger row (ledgerRowOf); a client's request id may contain text shaped like a
 * client secret, and cut out of the tag, the refund was recorded as one made outside the service, its amount
 * counted twice.
 */
import { describe, expect, it } from 'vitest';
import { dropClientSecrets } from '../../src/webhooks/client-secrets.js';

const refundEvent = (requestId: string, note: string) => ({
  id: 'evt_1',
  type: 'refund.created',
  data: {
    object: {
      id: 're_1',
      object: 'refund',
      metadata: { request_id: requestId, note },
      next_action: { url: 'https://hooks.stripe.com/x?payment_intent_client_secret=pi_1_secret_abc&y=1' },
    },
  },
});

describe('dropClientSecrets', () => {
  it("keeps a refund's request_id tag as the service wrote it, and still takes secrets out of everything else", () => {
    const event = dropClientSecrets(refundEvent('order-pi_3MtwBw_secret_YrKJUKribcBjcG8H', 'pi_9_secret_zz'));
    const refund = event.data.object;
    expect(refund.metadata.request_id).toBe('order-pi_3MtwBw_secret_YrKJUKribcBjcG8H');
    expect(refund.metadata.note).toBe('');
    expect(refund.next_action.url).toBe('https://hooks.stripe.com/x?payment_intent_client_secret=&y=1');
  });

  it('removes client_secret fields at any depth', () => {
    const event = dropClientSecrets({
      data: { object: { id: 'pi_1', client_secret: 'pi_1_secret_a', latest: { client_secret: 'x' } } },
    });
    expect(event).toEqual({ data: { object: { id: 'pi_1', latest: {} } } });
  });
});

/**
 * POST /webhook refuses every body it cannot verify with 400 problem+json, and writes nothing: no
 * inbox row, no outbox row (so nothing reaches `stripe.events`), no ledger change.
 */
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { databases, paidInDashboard, rabbitReady, until, useRig } from './support/rig.js';

const rabbit = await rabbitReady('webhook signatures');
const dbs = await databases();

describe.skipIf(!rabbit)('webhook signature checks', () => {
  describe.each(dbs)('on %s', (db) => {
    // With API keys required everywhere else: Stripe has none, and the signature is the only credential.
    const rig = useRig(db, 'sig', { env: { API_AUTH: 'on' } });
    let payload: string;
    let refundId: string;
    beforeAll(async () => {
      // A real refund the ledger has never seen: had any hostile copy been accepted, the ledger would record it.
      const pi = await paidInDashboard(rig, 'pm_card_visa', 1000);
      const refund = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 1000 });
      refundId = refund.id;
      payload = JSON.stringify({
        id: `evt_sig${randomBytes(8).toString('hex')}`,
        object: 'event',
        api_version: Stripe.API_VERSION,
        created: Math.floor(Date.now() / 1000),
        data: { object: refund },
        livemode: false,
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
        type: 'refund.created',
      });
    });

    const now = () => Math.floor(Date.now() / 1000);
    const sign = (body: string, secret = rig.secret, timestamp = now()) =>
      Stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });

    const hostile: [string, () => { body: string; signature: string | null }, string][] = [
      ['no Stripe-Signature header', () => ({ body: payload, signature: null }), 'signature_missing'],
      [
        'a signature made with another secret',
        () => ({ body: payload, signature: sign(payload, `whsec_${randomBytes(24).toString('hex')}`) }),
        'signature_invalid',
      ],
      [
        'one byte of the body changed after signing',
        () => ({ body: payload.replace('"amount":1000', '"amount":9000'), signature: sign(payload) }),
        'signature_invalid',
      ],
      [
        'the same JSON re-serialised (whitespace)',
        () => ({ body: JSON.stringify(JSON.parse(payload), null, 2), signature: sign(payload) }),
        'signature_invalid',
      ],
      [
        'a timestamp 301 s old',
        () => ({ body: payload, signature: sign(payload, undefined, now() - 301) }),
        'signature_expired',
      ],
      [
        'a timestamp 3600 s ahead',
        () => ({ body: payload, signature: sign(payload, undefined, now() + 3600) }),
        'signature_expired',
      ],
      ['an empty body', () => ({ body: '', signature: sign('') }), 'body_missing'],
      [
        'an empty body with the real signature',
        () => ({ body: '', signature: sign(payload) }),
        'body_missing',
      ],
      [
        // The SDK checked the text it decodes from the bytes (a byte order mark dropped), not the bytes themselves.
        'a UTF-8 byte order mark put before the signed body',
        () => ({ body: `\uFEFF${payload}`, signature: sign(payload) }),
        'signature_invalid',
      ],
      ['a malformed header', () => ({ body: payload, signature: 'not-a-signature' }), 'signature_invalid'],
      [
        'a v0 (not v1) signature',
        () => ({ body: payload, signature: sign(payload).replace('v1=', 'v0=') }),
        'signature_invalid',
      ],
      [
        'a signed body that is not JSON',
        () => ({ body: 'hello', signature: sign('hello') }),
        'event_invalid',
      ],
      [
        'a signed JSON body that is not an event',
        () => ({ body: '{"id":"evt_1","data":null}', signature: sign('{"id":"evt_1","data":null}') }),
        'event_invalid',
      ],
    ];

    it.each(hostile)('%s → 400 problem+json and nothing written', async (_name, make, code) => {
      const before = await rig.counts();
      const { body, signature } = make();
      const res = await rig.send(body, { signature });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await res.json()) as Record<string, unknown>;
      expect(problem).toMatchObject({ status: 400, code });
      if (signature) expect(JSON.stringify(problem)).not.toContain(signature.split('v1=')[1] ?? signature);
      await rig.svc.deps.webhooks.idle();
      expect(await rig.counts()).toEqual(before);
      expect(await rig.svc.deps.store.refunds.getByStripeId(refundId)).toBeNull();
    });

    it('the genuine delivery (290 s old) is accepted and applied, and no signature reaches the logs', async () => {
      const before = await rig.counts();
      const signature = sign(payload, undefined, now() - 290);
      const res = await rig.send(payload, { signature });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ success: true });
      await rig.settled();
      const after = await rig.counts();
      expect(after.webhook_events).toBe(before.webhook_events + 1);
      // The stripe.events row, plus the outcome message for the refund recorded from it.
      expect(after.outbox).toBe(before.outbox + 2);
      const row = await until(() => rig.svc.deps.store.refunds.getByStripeId(refundId), 'the refund row');
      expect(row).toMatchObject({ status: 'succeeded', amount: 1000, mode: 'external' });
      const logs = rig.svc.lines.join('\n');
      expect(logs).not.toContain(signature.split('v1=')[1]!);
      expect(logs).not.toContain(rig.secret);
    });
  });
});

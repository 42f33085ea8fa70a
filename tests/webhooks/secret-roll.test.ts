/**
 * Rolling the webhook signing secret: while Stripe signs each event with the old and the new secret,
 * STRIPE_WEBHOOK_SECRET lists both and POST /webhook accepts an event that verifies with either. Before, the
 * variable took one secret (a list stopped the start), so each process held the old one or the new one.
 */
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paidIntent } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { rabbitReady, useRig } from './support/rig.js';

const rabbit = await rabbitReady('webhook secret roll');

const aSecret = () => `whsec_${randomBytes(24).toString('hex')}`;
const now = () => Math.floor(Date.now() / 1000);
const sign = (payload: string, secret: string, timestamp = now()) =>
  Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });

function anEvent(): { id: string; payload: string } {
  const id = `evt_roll${randomBytes(8).toString('hex')}`;
  const payload = JSON.stringify({
    id,
    object: 'event',
    api_version: Stripe.API_VERSION,
    created: now(),
    data: { object: { id: `cus_roll${randomBytes(6).toString('hex')}`, object: 'customer' } },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: 'customer.created',
  });
  return { id, payload };
}

describe.skipIf(!rabbit)('rolling the webhook signing secret', () => {
  const OLD = aSecret();
  const NEW = aSecret();
  const signatures: string[] = [];
  // As an operator writes it mid-roll: the new secret added after the old one, spaces around the comma.
  const rig = useRig('sqlite', 'roll', { env: { STRIPE_WEBHOOK_SECRET: ` ${OLD} , ${NEW} ` } });

  async function send(payload: string, signature: string): Promise<Response> {
    signatures.push(...[...signature.matchAll(/v1=([0-9a-f]+)/g)].map((m) => m[1]!));
    return rig.send(payload, { signature });
  }

  async function expectAccepted(event: { id: string; payload: string }, signature: string): Promise<void> {
    const res = await send(event.payload, signature);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect(await rig.svc.deps.store.inbox.get(event.id)).toMatchObject({ eventId: event.id });
  }

  it('accepts an event signed with the second secret (the new one)', async () => {
    const event = anEvent();
    await expectAccepted(event, sign(event.payload, NEW));
  });

  it('accepts an event signed with the first secret (the old one)', async () => {
    const event = anEvent();
    await expectAccepted(event, sign(event.payload, OLD));
  });

  it('accepts the header Stripe sends during a roll: one v1 signature per secret', async () => {
    const event = anEvent();
    const t = now();
    const header = `${sign(event.payload, OLD, t)},v1=${sign(event.payload, NEW, t).split('v1=')[1]}`;
    expect(header.match(/v1=/g)).toHaveLength(2);
    await expectAccepted(event, header);
  });

  it('refuses an event signed with neither, with the same problem+json as before, and stores nothing', async () => {
    const before = await rig.counts();
    const event = anEvent();
    const res = await send(event.payload, sign(event.payload, aSecret()));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toEqual({
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'The Stripe-Signature header does not match the body.',
      instance: '/webhook',
      request_id: res.headers.get('x-request-id'),
      code: 'signature_invalid',
    });
    await rig.svc.deps.webhooks.idle();
    expect(await rig.counts()).toEqual(before);
    expect(await rig.svc.deps.store.inbox.get(event.id)).toBeNull();
  });

  it('keeps the 300 s tolerance with the second secret: 290 s old passes, 301 s old is signature_expired', async () => {
    const fresh = anEvent();
    await expectAccepted(fresh, sign(fresh.payload, NEW, now() - 290));
    const stale = anEvent();
    const res = await send(stale.payload, sign(stale.payload, NEW, now() - 301));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ status: 400, code: 'signature_expired' });
    expect(await rig.svc.deps.store.inbox.get(stale.id)).toBeNull();
  });

  it('writes neither secret nor any signature to the logs', async () => {
    await rig.settled();
    expect(signatures.length).toBeGreaterThan(5);
    const logs = rig.svc.lines.join('\n');
    expect(logs).not.toContain(OLD.slice('whsec_'.length));
    expect(logs).not.toContain(NEW.slice('whsec_'.length));
    for (const signature of signatures) expect(logs).not.toContain(signature);
  });
});

describe('the embedded sandbox with two secrets listed', () => {
  const FIRST = aSecret();
  const SECOND = aSecret();
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite', { STRIPE_WEBHOOK_SECRET: `${FIRST},${SECOND}` });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('signs its webhooks with the first, and the service accepts them', async () => {
    expect(svc.deps.webhookSecret).toBe(FIRST);
    await paidIntent(svc.url, 1200);
    const received = await eventually(
      () => svc.deps.store.inbox.count(),
      (n) => n > 0,
    );
    expect(received).toBeGreaterThan(0);
    expect(svc.deps.sandbox?.stats().webhooks.failedAttempts).toBe(0);
  });
});

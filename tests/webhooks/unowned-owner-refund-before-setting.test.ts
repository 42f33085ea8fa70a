/**
 * UNOWNED_PAYMENTS_OWNER set on a ledger that recorded a dashboard payment and its dashboard refund with no owner
 * (their events applied before the setting, SQLite): once the payment is given to that owner at its first use (here
 * the owner's GET), its refunds recorded with no owner are given to it too, in the same transaction, so that
 * GET /refund-status/stripe:<refund id> answers the owner, also after the refund's next event. (Before, only the
 * payment row was rewritten: the owner read the payment with the refund counted, and the refund's status was 404.)
 * The PostgreSQL store, with the payment's event as the first use: unowned-payments-owner.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, postSignedWebhook } from '../helpers/http.js';
import {
  startSharedStripe,
  startTestService,
  type SharedStripe,
  type TestService,
} from '../helpers/service.js';

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('hex')}`;

describe('a dashboard refund recorded before UNOWNED_PAYMENTS_OWNER was set', () => {
  let stripe: SharedStripe;
  let dir: string;
  let svc: TestService | undefined;
  beforeAll(async () => {
    stripe = await startSharedStripe();
    dir = mkdtempSync(path.join(tmpdir(), 'unowned-refund-'));
  });
  afterAll(async () => {
    await svc?.stop();
    await stripe?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The service on the one ledger file, with API keys on, and the setting if given. */
  const start = (extra: Record<string, string> = {}) =>
    startTestService('sqlite', {
      API_AUTH: 'on',
      RATE_LIMIT_PER_MINUTE: '0',
      STRIPE_MAX_NETWORK_RETRIES: '0',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      DATABASE_URL: `sqlite:${path.join(dir, 'ledger.db')}`,
      ...stripe.env,
      ...extra,
    });

  async function eventOf(type: string, id: string): Promise<Stripe.Event> {
    const events = await svc!.deps.stripe.events.list({ type, limit: 100 });
    const event = events.data.find((e) => (e.data.object as { id: string }).id === id);
    expect(event, `${type} of ${id}`).toBeDefined();
    return event!;
  }

  async function deliver(event: Stripe.Event): Promise<void> {
    expect((await postSignedWebhook(svc!.url, WEBHOOK_SECRET, JSON.stringify(event))).status).toBe(200);
    await svc!.deps.webhooks.idle();
  }

  it("is the owner's to follow once the setting names it", async () => {
    // Before the setting: a dashboard payment and refund, their events applied (recorded with no owner).
    svc = await start();
    const pi = await svc.deps.stripe.paymentIntents.create({
      amount: 3000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      allowed_payment_method_types: ['card'],
      confirm: true,
    });
    const refund = await svc.deps.stripe.refunds.create({ payment_intent: pi.id, amount: 700 });
    await deliver(await eventOf('payment_intent.succeeded', pi.id));
    await deliver(await eventOf('refund.created', refund.id));
    expect((await svc.deps.store.refunds.getByStripeId(refund.id))?.owner).toBe('');
    await svc.stop();
    svc = undefined;

    // The setting on, same ledger.
    svc = await start({ UNOWNED_PAYMENTS_OWNER: 'shop' });
    const shop = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
    const read = await getJson(`${svc.url}/payment-intent/${pi.id}`, auth(shop));
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ id: pi.id, amount_refunded: 700 });

    expect.soft((await getJson(`${svc.url}/refund-status/stripe:${refund.id}`, auth(shop))).status).toBe(200);
    // Its next event (Stripe's own redelivery, say) does not put it right either.
    await deliver({
      ...(await eventOf('refund.created', refund.id)),
      id: `evt_again_${randomBytes(6).toString('hex')}`,
    });
    expect((await getJson(`${svc.url}/refund-status/stripe:${refund.id}`, auth(shop))).status).toBe(200);
  });
});

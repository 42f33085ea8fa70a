/**
 * With API keys on, a payment intent is its owner's: other owners get 404 for it. The ledger names the owner, and
 * Stripe does too (the intent's metadata), so that a confirmed intent Stripe charged while the ledger could not
 * record it (the database went away during the Stripe call; the client got a 503 without Retry-After) is still its
 * owner's to read and refund, and still nobody else's. The metadata key is the service's own: clients cannot set it.
 */
import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, postJson, postSignedWebhook } from '../helpers/http.js';
import {
  eventually,
  startSharedStripe,
  startTestServiceBehindProxy,
  type SharedStripe,
  type TestService,
} from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('hex')}`;
const PAYMENT = { amount: 2500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true };
const UNKNOWN = 'pi_neverexisted0000000000';
/** The metadata key the service names an intent's owner under at Stripe. */
const OWNER_KEY = 'payment_service_owner';

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

describe.skipIf(!pgOk)('payment intents and their owners at Stripe (PostgreSQL, API keys on)', () => {
  let stripe: SharedStripe;
  let proxy: TcpProxy;
  let svc: TestService;
  const keys: Record<string, string> = {};
  beforeAll(async () => {
    // A Stripe of its own that sends the service no webhooks: the service learns what it is asked about, when
    // asked (a test that wants an event delivers it itself).
    stripe = await startSharedStripe();
    ({ proxy, svc } = await startTestServiceBehindProxy({
      API_AUTH: 'on',
      DATABASE_TIMEOUT_MS: '400',
      STRIPE_MAX_NETWORK_RETRIES: '0',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      ...stripe.env,
    }));
    keys.shop = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
    keys.rival = (await createKey(svc.deps.store.apiKeys, { owner: 'rival', kind: 'secret' })).key;
  });
  afterAll(async () => {
    // The proxy first: closing its sockets fails whatever still waits on one, so the service can close.
    await proxy?.close();
    await svc?.stop();
    await stripe?.close();
  });

  /**
   * A confirmed POST /payment-intent without an Idempotency-Key, sent with a new key of shop's, whose database goes
   * away while Stripe charges the card: the service answers 503 without Retry-After and names the intent.
   */
  async function chargedWhileLedgerAway(): Promise<string> {
    const { key, record } = await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' });
    await stripe.faults({ latency_ms: 1_500, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    let res: Awaited<ReturnType<typeof postJson>>;
    try {
      const pending = postJson(`${svc.url}/payment-intent`, PAYMENT, auth(key));
      // The key's first use is written once the key is checked: the request is then on its way to Stripe.
      const used = await eventually(
        () => svc.sql(`SELECT last_used_at FROM api_keys WHERE id = '${record.id}'`),
        (rows) => rows[0]?.last_used_at != null,
        5_000,
      );
      expect(used[0]?.last_used_at).not.toBeNull();
      proxy.blackHole();
      res = await pending;
    } finally {
      proxy.forward();
      await stripe.faults({});
    }
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeNull();
    const id = /pi_\w+/.exec(String(res.json.detail))?.[0];
    expect(id).toBeDefined();
    const atStripe = await svc.deps.stripe.paymentIntents.retrieve(id!);
    expect([atStripe.status, atStripe.amount]).toEqual(['succeeded', 2500]);
    return id!;
  }

  /** What `key` is answered for GET /payment-intent/{id} and a refund of it, with the per-request fields blanked. */
  async function answersFor(key: string, id: string) {
    const get = await getJson(`${svc.url}/payment-intent/${id}`, auth(key));
    const refund = await postJson(`${svc.url}/refund`, { payment_intent_id: id, amount: 100 }, auth(key));
    return [get, refund].map((res) => ({
      status: res.status,
      contentType: res.headers.get('content-type'),
      body: { ...res.json, instance: 0, request_id: 0 },
    }));
  }

  /** Shop reads the intent, refunds part of it, and sees the refund counted. */
  async function ownerReadsAndRefunds(id: string) {
    const read = await getJson(`${svc.url}/payment-intent/${id}`, auth(keys.shop!));
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({
      id,
      amount: 2500,
      status: 'succeeded',
      amount_refunded: 0,
      metadata: {},
    });

    const refund = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: id, amount: 1000 },
      auth(keys.shop!),
    );
    expect(refund.status).toBe(200);
    expect(refund.json).toMatchObject({ success: true, refund: { amount: 1000, payment_intent: id } });
    const refunded = await getJson(`${svc.url}/payment-intent/${id}`, auth(keys.shop!));
    expect(refunded.json.amount_refunded).toBe(1000);
    const atStripe = await svc.deps.stripe.refunds.list({ payment_intent: id });
    expect(atStripe.data.map((r) => r.amount)).toEqual([1000]);
  }

  it('an intent charged while the ledger was away is its owner to read and refund, and 404 to others', async () => {
    const id = await chargedWhileLedgerAway();

    // Another owner is answered as for an id Stripe never made, before and after the owner's first look.
    const unknown = await answersFor(keys.rival!, UNKNOWN);
    expect(unknown.map((a) => a.status)).toEqual([404, 404]);
    expect(await answersFor(keys.rival!, id)).toEqual(unknown);

    await ownerReadsAndRefunds(id);
    expect(await answersFor(keys.rival!, id)).toEqual(unknown);
    const atStripe = await svc.deps.stripe.refunds.list({ payment_intent: id });
    expect(atStripe.data).toHaveLength(1);
  });

  it("also when Stripe's event for it reached the service first", async () => {
    const id = await chargedWhileLedgerAway();
    const events = await svc.deps.stripe.events.list({ type: 'payment_intent.succeeded', limit: 100 });
    const event = events.data.find((e) => (e.data.object as Stripe.PaymentIntent).id === id);
    expect(event).toBeDefined();
    const delivered = await postSignedWebhook(svc.url, WEBHOOK_SECRET, JSON.stringify(event));
    expect(delivered.status).toBe(200);
    await svc.deps.webhooks.idle();

    await ownerReadsAndRefunds(id);
    const unknown = await answersFor(keys.rival!, UNKNOWN);
    expect(await answersFor(keys.rival!, id)).toEqual(unknown);
  });

  it('a refund of it made in the Stripe dashboard is its owner to follow', async () => {
    const id = await chargedWhileLedgerAway();
    const refund = await svc.deps.stripe.refunds.create({ payment_intent: id, amount: 700 });
    const events = await svc.deps.stripe.events.list({ type: 'refund.created', limit: 100 });
    const event = events.data.find((e) => (e.data.object as Stripe.Refund).id === refund.id);
    expect(event).toBeDefined();
    const delivered = await postSignedWebhook(svc.url, WEBHOOK_SECRET, JSON.stringify(event));
    expect(delivered.status).toBe(200);
    // Acknowledged once stored; applied just after.
    await svc.deps.webhooks.idle();

    const status = await getJson(`${svc.url}/refund-status/stripe:${refund.id}`, auth(keys.shop!));
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ request_id: `stripe:${refund.id}`, amount: 700 });
    const read = await getJson(`${svc.url}/payment-intent/${id}`, auth(keys.shop!));
    expect(read.json).toMatchObject({ id, amount_refunded: 700 });
    const theirs = await getJson(`${svc.url}/refund-status/stripe:${refund.id}`, auth(keys.rival!));
    expect(theirs.status).toBe(404);
  });

  it('an intent made at Stripe outside the service (the dashboard) stays unknown to every owner', async () => {
    const pi = await svc.deps.stripe.paymentIntents.create({
      amount: 2500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      allowed_payment_method_types: ['card'],
      confirm: true,
    });
    expect(pi.status).toBe('succeeded');
    const unknown = await answersFor(keys.shop!, UNKNOWN);
    expect(await answersFor(keys.shop!, pi.id)).toEqual(unknown);
    const refunds = await svc.deps.stripe.refunds.list({ payment_intent: pi.id });
    expect(refunds.data).toEqual([]);
  });

  it('answers the metadata as the client gave it, without the owner the service names at Stripe', async () => {
    const made = await postJson(
      `${svc.url}/payment-intent`,
      { ...PAYMENT, metadata: { order_id: 'ord_7' } },
      auth(keys.shop!),
    );
    expect(made.status).toBe(200);
    const read = await getJson(`${svc.url}/payment-intent/${made.json.paymentIntentId}`, auth(keys.shop!));
    expect(read.status).toBe(200);
    expect(read.json.metadata).toEqual({ order_id: 'ord_7' });
  });

  it('refuses client metadata naming the owner key, with nothing sent to Stripe', async () => {
    const before = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    const sessionsBefore = await svc.deps.stripe.checkout.sessions.list({ limit: 100 });
    const spoof = { [OWNER_KEY]: 'rival', order_id: 'ord_8' };
    const intent = await postJson(
      `${svc.url}/payment-intent`,
      { ...PAYMENT, metadata: spoof },
      auth(keys.shop!),
    );
    const session = await postJson(
      `${svc.url}/create-checkout-session`,
      {
        line_items: [
          { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
        ],
        success_url: 'https://shop.example.com/ok',
        cancel_url: 'https://shop.example.com/no',
        metadata: spoof,
      },
      auth(keys.shop!),
    );
    for (const res of [intent, session]) {
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.json).toMatchObject({
        status: 400,
        code: 'metadata_key_reserved',
        param: 'metadata',
        errors: [{ path: `/body/metadata/${OWNER_KEY}` }],
      });
    }
    const after = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    const sessionsAfter = await svc.deps.stripe.checkout.sessions.list({ limit: 100 });
    expect(after.data.length).toBe(before.data.length);
    expect(sessionsAfter.data.length).toBe(sessionsBefore.data.length);
  });

  it("refuses 50 metadata keys on a payment intent: Stripe's 50th is the owner's", async () => {
    const metadata = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
    const res = await postJson(`${svc.url}/payment-intent`, { ...PAYMENT, metadata }, auth(keys.shop!));
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: 'metadata_too_many_keys', param: 'metadata' });
    const fits = await postJson(
      `${svc.url}/payment-intent`,
      { ...PAYMENT, metadata: Object.fromEntries(Object.entries(metadata).slice(1)) },
      auth(keys.shop!),
    );
    expect(fits.status).toBe(200);
  });
});

/**
 * UNOWNED_PAYMENTS_OWNER: with API keys on, a payment that names no owner at Stripe (one the Python service made, or
 * one made in the dashboard or through a Payment Link) is unknown to every owner by default
 * (payment-intent-owner.test.ts). With the setting, it is the owner it names: that owner's keys read and refund it
 * (sync and async), the ledger records it under that owner, and every other owner still gets the answer an id
 * Stripe never made gets. A payment that names an owner stays that owner's.
 */
import type Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, payOnHostedPage, postJson, postSignedWebhook } from '../helpers/http.js';
import { eventually } from '../helpers/service.js';
import { auth, useOwnerRig } from '../helpers/owner-rig.js';
import { postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

const UNKNOWN = 'pi_neverexisted0000000000';
const UNKNOWN_SESSION = 'cs_test_neverexisted0000000000';

describe.skipIf(!pgOk)('UNOWNED_PAYMENTS_OWNER (PostgreSQL, API keys on)', () => {
  const rig = useOwnerRig('postgres', { UNOWNED_PAYMENTS_OWNER: 'shop' });
  const { keys } = rig;
  beforeAll(async () => {
    keys.shopReader = (
      await createKey(rig.svc.deps.store.apiKeys, {
        owner: 'shop',
        kind: 'secret',
        scopes: ['payments:read'],
      })
    ).key;
  });

  /** The ledger's row of paid intent `id` (2500 usd) with no owner, as a webhook applied before the setting wrote it. */
  const recordedWithNoOwner = (id: string) =>
    rig.svc.deps.store.payments.upsert({
      id,
      kind: 'payment_intent',
      owner: '',
      amount: 2500,
      currency: 'usd',
      status: 'succeeded',
      metadata: {},
    });

  /** A payment made at Stripe directly (the Python service, the dashboard), naming no owner. */
  async function ownerlessIntent(amount = 2500): Promise<string> {
    const pi = await rig.svc.deps.stripe.paymentIntents.create({
      amount,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      allowed_payment_method_types: ['card'],
      confirm: true,
    });
    expect(pi.status).toBe('succeeded');
    expect(pi.metadata).toEqual({});
    return pi.id;
  }

  /** A checkout session made at Stripe directly (a Payment Link, the Python service), paid on the hosted page. */
  async function ownerlessPaidCheckout(): Promise<{ cs: string; pi: string }> {
    const made = await rig.svc.deps.stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        { price_data: { currency: 'usd', product_data: { name: 'Lamp' }, unit_amount: 2500 }, quantity: 1 },
      ],
      success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://shop.example.com/no',
    });
    const paid = await payOnHostedPage(made.url!);
    expect(paid.status).toBe(303);
    const session = await rig.svc.deps.stripe.checkout.sessions.retrieve(made.id);
    expect(session.payment_status).toBe('paid');
    expect(session.metadata ?? {}).toEqual({});
    return { cs: session.id, pi: session.payment_intent as string };
  }

  /** What `key` is answered for GET /payment-intent/{id} and refunds of it, with the per-request fields blanked. */
  async function answersFor(key: string, id: string) {
    const get = await getJson(`${rig.svc.url}/payment-intent/${id}`, auth(key));
    const refund = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: id, amount: 100 }, auth(key));
    const queued = await postJson(
      `${rig.svc.url}/refund-async`,
      { payment_intent_id: id, amount: 100 },
      auth(key),
    );
    return [get, refund, queued].map((res) => ({
      status: res.status,
      contentType: res.headers.get('content-type'),
      body: { ...res.json, instance: 0, request_id: 0 },
    }));
  }

  /**
   * The Stripe calls (method and route, sorted: some are made at once) the service made while `fn` ran, from the
   * sandbox's request log.
   */
  async function stripeCallsDuring(fn: () => Promise<unknown>): Promise<string[]> {
    type Captured = { requestId: string; method: string; route: string | null };
    const log = async () => {
      const res = await fetch(`${rig.stripe.env.STRIPE_API_BASE}/_sandbox/requests`);
      return ((await res.json()) as { data: Captured[] }).data;
    };
    const marker = (await log()).at(-1)?.requestId;
    await fn();
    const after = await log();
    const since = after.slice(after.findIndex((c) => c.requestId === marker) + 1);
    return since.map((c) => `${c.method} ${c.route}`).sort();
  }

  async function sessionAnswerFor(key: string, id: string) {
    const res = await getJson(`${rig.svc.url}/checkout-session?session_id=${id}`, auth(key));
    return { status: res.status, body: { ...res.json, instance: 0, request_id: 0 } };
  }

  async function ledgerOwner(id: string): Promise<unknown> {
    const rows = await rig.svc.sql(`SELECT owner FROM payments WHERE id = '${id}'`);
    return rows[0]?.owner;
  }

  async function refundsAtStripe(pi: string): Promise<number[]> {
    return (await rig.svc.deps.stripe.refunds.list({ payment_intent: pi })).data.map((r) => r.amount);
  }

  /** Shop reads the intent, refunds part of it (POST /refund), and sees the refund counted. */
  async function shopReadsAndRefunds(id: string) {
    const read = await getJson(`${rig.svc.url}/payment-intent/${id}`, auth(keys.shop!));
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ id, amount: 2500, status: 'succeeded', amount_refunded: 0 });
    const refund = await postJson(
      `${rig.svc.url}/refund`,
      { payment_intent_id: id, amount: 1000 },
      auth(keys.shop!),
    );
    expect(refund.status).toBe(200);
    expect(refund.json).toMatchObject({ success: true, refund: { amount: 1000, payment_intent: id } });
    const refunded = await getJson(`${rig.svc.url}/payment-intent/${id}`, auth(keys.shop!));
    expect(refunded.json.amount_refunded).toBe(1000);
    expect(await refundsAtStripe(id)).toEqual([1000]);
    expect(await ledgerOwner(id)).toBe('shop');
  }

  it('an intent naming no owner is its to read and refund, and answered to others as an unknown id', async () => {
    const id = await ownerlessIntent();
    const unknown = await answersFor(keys.rival!, UNKNOWN);
    expect(unknown.map((a) => a.status)).toEqual([404, 404, 404]);
    // The same answers after the same Stripe calls, before and after its owner's first use.
    const unknownCalls = await stripeCallsDuring(() => answersFor(keys.rival!, UNKNOWN));
    expect(unknownCalls.length).toBeGreaterThan(0);
    let answers: unknown;
    expect(await stripeCallsDuring(async () => (answers = await answersFor(keys.rival!, id)))).toEqual(
      unknownCalls,
    );
    expect(answers).toEqual(unknown);

    await shopReadsAndRefunds(id);
    expect(await stripeCallsDuring(async () => (answers = await answersFor(keys.rival!, id)))).toEqual(
      unknownCalls,
    );
    expect(answers).toEqual(unknown);
    expect(await refundsAtStripe(id)).toEqual([1000]);
  });

  it('refunds one asynchronously (POST /refund-async), once', async () => {
    const id = await ownerlessIntent();
    const queued = await postJson(`${rig.svc.url}/refund-async`, { payment_intent_id: id }, auth(keys.shop!));
    expect(queued.status).toBe(202);
    const requestId = queued.json.request_id as string;
    const done = await eventually(
      () => getJson(`${rig.svc.url}/refund-status/${requestId}`, auth(keys.shop!)),
      (r) => r.json.status === 'succeeded',
    );
    expect(done.json).toMatchObject({ status: 'succeeded', amount: 2500 });
    expect(await refundsAtStripe(id)).toEqual([2500]);
    expect(await ledgerOwner(id)).toBe('shop');
    const theirs = await getJson(`${rig.svc.url}/refund-status/${requestId}`, auth(keys.rival!));
    expect(theirs.status).toBe(404);
  });

  it('scopes apply as usual: a read-only key of its reads, and may not refund', async () => {
    const id = await ownerlessIntent();
    expect((await getJson(`${rig.svc.url}/payment-intent/${id}`, auth(keys.shopReader!))).status).toBe(200);
    const refund = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: id }, auth(keys.shopReader!));
    expect(refund.status).toBe(403);
    expect(await refundsAtStripe(id)).toEqual([]);
  });

  it("a checkout session naming no owner (a Payment Link's) and its intent are its, and nobody else's", async () => {
    const { cs, pi } = await ownerlessPaidCheckout();
    const unknownSession = await sessionAnswerFor(keys.rival!, UNKNOWN_SESSION);
    expect(unknownSession.status).toBe(404);
    expect(await sessionAnswerFor(keys.rival!, cs)).toEqual(unknownSession);
    const unknown = await answersFor(keys.rival!, UNKNOWN);
    expect(await answersFor(keys.rival!, pi)).toEqual(unknown);

    const read = await getJson(`${rig.svc.url}/checkout-session?session_id=${cs}`, auth(keys.shop!));
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ id: cs, payment_intent: pi });
    expect(await ledgerOwner(cs)).toBe('shop');
    await shopReadsAndRefunds(pi);

    expect(await sessionAnswerFor(keys.rival!, cs)).toEqual(unknownSession);
    expect(await answersFor(keys.rival!, pi)).toEqual(unknown);
    expect(await refundsAtStripe(pi)).toEqual([1000]);
  });

  it("a checkout session's intent is its when the intent is asked for first", async () => {
    const { cs, pi } = await ownerlessPaidCheckout();
    await shopReadsAndRefunds(pi);
    expect(await ledgerOwner(cs)).toBe('shop');
  });

  it('a row recorded with no owner before the setting is taken as its, and rewritten so on first use', async () => {
    const id = await ownerlessIntent();
    // As a webhook applied before the setting recorded it.
    await recordedWithNoOwner(id);
    expect(await ledgerOwner(id)).toBe('');
    const unknown = await answersFor(keys.rival!, UNKNOWN);
    expect(await answersFor(keys.rival!, id)).toEqual(unknown);
    await shopReadsAndRefunds(id);
    expect(await answersFor(keys.rival!, id)).toEqual(unknown);
  });

  it('its events are recorded under it, and a dashboard refund of it is its to follow', async () => {
    const id = await ownerlessIntent();
    const events = await rig.svc.deps.stripe.events.list({ type: 'payment_intent.succeeded', limit: 100 });
    const event = events.data.find((e) => (e.data.object as Stripe.PaymentIntent).id === id);
    expect(event).toBeDefined();
    expect((await postSignedWebhook(rig.svc.url, rig.webhookSecret, JSON.stringify(event))).status).toBe(200);
    await rig.svc.deps.webhooks.idle();
    expect(await ledgerOwner(id)).toBe('shop');

    const refund = await rig.svc.deps.stripe.refunds.create({ payment_intent: id, amount: 700 });
    const refundEvents = await rig.svc.deps.stripe.events.list({ type: 'refund.created', limit: 100 });
    const refundEvent = refundEvents.data.find((e) => (e.data.object as Stripe.Refund).id === refund.id);
    expect(refundEvent).toBeDefined();
    expect(
      (await postSignedWebhook(rig.svc.url, rig.webhookSecret, JSON.stringify(refundEvent))).status,
    ).toBe(200);
    await rig.svc.deps.webhooks.idle();
    const status = await getJson(`${rig.svc.url}/refund-status/stripe:${refund.id}`, auth(keys.shop!));
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ request_id: `stripe:${refund.id}`, amount: 700 });
    const read = await getJson(`${rig.svc.url}/payment-intent/${id}`, auth(keys.shop!));
    expect(read.json).toMatchObject({ id, amount_refunded: 700 });
    expect(
      (await getJson(`${rig.svc.url}/refund-status/stripe:${refund.id}`, auth(keys.rival!))).status,
    ).toBe(404);
  });

  it("a dashboard refund recorded with no owner before the setting follows its payment to it, at the payment's event", async () => {
    const id = await ownerlessIntent();
    const refund = await rig.svc.deps.stripe.refunds.create({ payment_intent: id, amount: 700 });
    // As the events applied before the setting recorded them: the payment and its dashboard refund, with no owner.
    await recordedWithNoOwner(id);
    await rig.svc.deps.store.refunds.insert({
      requestId: `stripe:${refund.id}`,
      owner: '',
      paymentIntentId: id,
      amount: 700,
      currency: 'usd',
      status: 'succeeded',
      stripeRefundId: refund.id,
      mode: 'external',
    });
    const events = await rig.svc.deps.stripe.events.list({ type: 'payment_intent.succeeded', limit: 100 });
    const event = events.data.find((e) => (e.data.object as Stripe.PaymentIntent).id === id);
    expect(event).toBeDefined();
    expect((await postSignedWebhook(rig.svc.url, rig.webhookSecret, JSON.stringify(event))).status).toBe(200);
    await rig.svc.deps.webhooks.idle();
    expect(await ledgerOwner(id)).toBe('shop');

    const status = await getJson(`${rig.svc.url}/refund-status/stripe:${refund.id}`, auth(keys.shop!));
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({
      request_id: `stripe:${refund.id}`,
      amount: 700,
      status: 'succeeded',
    });
    expect(
      (await getJson(`${rig.svc.url}/refund-status/stripe:${refund.id}`, auth(keys.rival!))).status,
    ).toBe(404);
    const read = await getJson(`${rig.svc.url}/payment-intent/${id}`, auth(keys.shop!));
    expect(read.json).toMatchObject({ id, amount_refunded: 700 });
  });

  it("a payment naming another owner stays that owner's", async () => {
    const made = await postJson(
      `${rig.svc.url}/payment-intent`,
      { amount: 2500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
      auth(keys.rival!),
    );
    expect(made.status).toBe(200);
    const id = made.json.paymentIntentId as string;
    const unknown = await answersFor(keys.shop!, UNKNOWN);
    expect(await answersFor(keys.shop!, id)).toEqual(unknown);
    // Also when the ledger lacks it: Stripe's metadata names rival.
    await rig.svc.sql(`DELETE FROM payments WHERE id = '${id}'`);
    expect(await answersFor(keys.shop!, id)).toEqual(unknown);
    expect(await refundsAtStripe(id)).toEqual([]);
    expect((await getJson(`${rig.svc.url}/payment-intent/${id}`, auth(keys.rival!))).status).toBe(200);
    expect(await ledgerOwner(id)).toBe('rival');
  });
});

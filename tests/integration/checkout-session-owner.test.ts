/**
 * With API keys on, a checkout session (and the payment intent Stripe makes when it is paid) names its owner at
 * Stripe, as a payment intent made with POST /payment-intent does (payment-intent-owner.test.ts). The ledger names
 * the owner as well, but a ledger that lacks the session (a database restored from a backup older than the session,
 * or a session row whose write failed after Stripe made the session) knew no owner for the paid intent: its owner got
 * 404 for GET /payment-intent/{id} and could refund it only in the Stripe dashboard, and its webhooks were attributed
 * to nobody. The owner is now learnt from the session's metadata at Stripe, and nobody else sees the payment.
 */
import { hash, randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { getJson, payOnHostedPage, postJson, postSignedWebhook } from '../helpers/http.js';
import { auth, useOwnerRig } from '../helpers/owner-rig.js';
import { postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

const UNKNOWN = 'pi_neverexisted0000000000';
/** The metadata key the service names a payment's owner under at Stripe. */
const OWNER_KEY = 'payment_service_owner';

const checkout = (metadata?: Record<string, string>) => ({
  line_items: [
    { price_data: { currency: 'usd', product_data: { name: 'Lamp' }, unit_amount: 2500 }, quantity: 1 },
  ],
  success_url: 'https://shop.example.com/ok',
  cancel_url: 'https://shop.example.com/no',
  ...(metadata ? { metadata } : {}),
});

describe.skipIf(!pgOk)('checkout sessions and their owners at Stripe (PostgreSQL, API keys on)', () => {
  const rig = useOwnerRig('postgres');
  const { keys } = rig;

  /** Shop's checkout session, paid on the hosted page: the session's and its payment intent's ids. */
  async function paidCheckout(metadata?: Record<string, string>): Promise<{ cs: string; pi: string }> {
    const made = await postJson(
      `${rig.svc.url}/create-checkout-session`,
      checkout(metadata),
      auth(keys.shop!),
    );
    expect(made.status).toBe(200);
    const paid = await payOnHostedPage(made.json.url as string);
    expect(paid.status).toBe(303);
    const session = await rig.svc.deps.stripe.checkout.sessions.retrieve(made.json.id as string);
    expect(session.payment_status).toBe('paid');
    return { cs: session.id, pi: session.payment_intent as string };
  }

  /** The ledger loses the session and its intent, as a restore from a backup older than them does. */
  async function ledgerForgets(...ids: string[]) {
    await rig.svc.sql(`DELETE FROM payments WHERE id IN (${ids.map((id) => `'${id}'`).join(', ')})`);
    expect(
      await rig.svc.sql(`SELECT id FROM payments WHERE id IN (${ids.map((id) => `'${id}'`).join(', ')})`),
    ).toEqual([]);
  }

  /** The ledger's owner and metadata of each of `ids`, by id. */
  async function ledgerRows(...ids: string[]) {
    const rows = await rig.svc.sql(
      `SELECT id, owner, metadata FROM payments WHERE id IN (${ids.map((id) => `'${id}'`).join(', ')}) ORDER BY id`,
    );
    return Object.fromEntries(
      rows.map((r) => [r.id, { owner: r.owner, metadata: JSON.parse(String(r.metadata)) as unknown }]),
    );
  }

  /** What `key` is answered for GET /payment-intent/{id} and a refund of it, with the per-request fields blanked. */
  async function answersFor(key: string, id: string) {
    const get = await getJson(`${rig.svc.url}/payment-intent/${id}`, auth(key));
    const refund = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: id, amount: 100 }, auth(key));
    return [get, refund].map((res) => ({
      status: res.status,
      contentType: res.headers.get('content-type'),
      body: { ...res.json, instance: 0, request_id: 0 },
    }));
  }

  it('names its owner at Stripe, on the session and on its payment intent, and answers without it', async () => {
    const { cs, pi } = await paidCheckout({ order_id: 'ord_1' });
    const session = await rig.svc.deps.stripe.checkout.sessions.retrieve(cs);
    expect(session.metadata).toEqual({ order_id: 'ord_1', [OWNER_KEY]: 'shop' });
    const intent = await rig.svc.deps.stripe.paymentIntents.retrieve(pi);
    expect(intent.metadata).toEqual({ order_id: 'ord_1', [OWNER_KEY]: 'shop' });

    const read = await getJson(`${rig.svc.url}/checkout-session?session_id=${cs}`, auth(keys.shop!));
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ id: cs, payment_intent: pi, metadata: { order_id: 'ord_1' } });
    expect(read.json.metadata).toEqual({ order_id: 'ord_1' });
    // A session made without metadata names its owner too, and is answered with none.
    const bare = await postJson(`${rig.svc.url}/create-checkout-session`, checkout(), auth(keys.shop!));
    expect(bare.status).toBe(200);
    const bareAtStripe = await rig.svc.deps.stripe.checkout.sessions.retrieve(bare.json.id as string);
    expect(bareAtStripe.metadata).toEqual({ [OWNER_KEY]: 'shop' });
    const bareRead = await getJson(
      `${rig.svc.url}/checkout-session?session_id=${bare.json.id}`,
      auth(keys.shop!),
    );
    expect(bareRead.json.metadata).toEqual({});
    // The ledger keeps the client's metadata only.
    expect(await ledgerRows(cs, pi, bare.json.id as string)).toEqual({
      [cs]: { owner: 'shop', metadata: { order_id: 'ord_1' } },
      [pi]: { owner: 'shop', metadata: { order_id: 'ord_1' } },
      [bare.json.id as string]: { owner: 'shop', metadata: {} },
    });
  });

  it('a paid session the ledger lacks is its owner to read and refund, and 404 to others', async () => {
    const { cs, pi } = await paidCheckout({ order_id: 'ord_2' });
    // The service learnt the intent when the page was paid only if asked: make sure the ledger knew both, then
    // lose them.
    expect((await getJson(`${rig.svc.url}/checkout-session?session_id=${cs}`, auth(keys.shop!))).status).toBe(
      200,
    );
    await ledgerForgets(cs, pi);

    // Another owner is answered as for an id Stripe never made, before and after the owner's first look.
    const unknown = await answersFor(keys.rival!, UNKNOWN);
    expect(unknown.map((a) => a.status)).toEqual([404, 404]);
    expect(await answersFor(keys.rival!, pi)).toEqual(unknown);

    const read = await getJson(`${rig.svc.url}/payment-intent/${pi}`, auth(keys.shop!));
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ id: pi, amount: 2500, status: 'succeeded', amount_refunded: 0 });
    expect(read.json.metadata).toEqual({ order_id: 'ord_2' });
    // Learnt from the session: both are recorded again, for the shop, with the client's metadata.
    expect(await ledgerRows(cs, pi)).toEqual({
      [cs]: { owner: 'shop', metadata: { order_id: 'ord_2' } },
      [pi]: { owner: 'shop', metadata: { order_id: 'ord_2' } },
    });
    const session = await getJson(`${rig.svc.url}/checkout-session?session_id=${cs}`, auth(keys.shop!));
    expect(session.status).toBe(200);
    expect(session.json).toMatchObject({ id: cs, payment_intent: pi, metadata: { order_id: 'ord_2' } });

    const refund = await postJson(
      `${rig.svc.url}/refund`,
      { payment_intent_id: pi, amount: 1000 },
      auth(keys.shop!),
    );
    expect(refund.status).toBe(200);
    expect(refund.json).toMatchObject({ success: true, refund: { amount: 1000, payment_intent: pi } });
    const refunded = await getJson(`${rig.svc.url}/payment-intent/${pi}`, auth(keys.shop!));
    expect(refunded.json.amount_refunded).toBe(1000);

    expect(await answersFor(keys.rival!, pi)).toEqual(unknown);
    expect(
      (await getJson(`${rig.svc.url}/checkout-session?session_id=${cs}`, auth(keys.rival!))).status,
    ).toBe(404);
    const atStripe = await rig.svc.deps.stripe.refunds.list({ payment_intent: pi });
    expect(atStripe.data.map((r) => r.amount)).toEqual([1000]);
  });

  it("a paid session the ledger lacks is its owner's when its event comes first", async () => {
    const { cs, pi } = await paidCheckout();
    expect((await getJson(`${rig.svc.url}/checkout-session?session_id=${cs}`, auth(keys.shop!))).status).toBe(
      200,
    );
    await ledgerForgets(cs, pi);
    const events = await rig.svc.deps.stripe.events.list({ type: 'checkout.session.completed', limit: 100 });
    const event = events.data.find((e) => (e.data.object as Stripe.Checkout.Session).id === cs);
    expect(event).toBeDefined();
    const delivered = await postSignedWebhook(rig.svc.url, rig.webhookSecret, JSON.stringify(event));
    expect(delivered.status).toBe(200);
    // Acknowledged once stored; applied just after.
    await rig.svc.deps.webhooks.idle();

    // The event recorded both for the shop, without the service's key in the ledger's metadata.
    expect(await ledgerRows(cs, pi)).toEqual({
      [cs]: { owner: 'shop', metadata: {} },
      [pi]: { owner: 'shop', metadata: {} },
    });
    const read = await getJson(`${rig.svc.url}/checkout-session?session_id=${cs}`, auth(keys.shop!));
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ id: cs, payment_intent: pi, payment_status: 'paid', metadata: {} });
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`, auth(keys.shop!))).status).toBe(200);
    const unknown = await answersFor(keys.rival!, UNKNOWN);
    expect(await answersFor(keys.rival!, pi)).toEqual(unknown);
  });

  /** What `key` is answered for GET /checkout-session of `id`, with the per-request fields blanked. */
  async function sessionAnswerFor(key: string, id: string) {
    const res = await getJson(`${rig.svc.url}/checkout-session?session_id=${id}`, auth(key));
    return {
      status: res.status,
      contentType: res.headers.get('content-type'),
      body: { ...res.json, instance: 0, request_id: 0 },
    };
  }

  it("a session the ledger lacks is its owner's to read on the success page, and 404 to others", async () => {
    const { cs, pi } = await paidCheckout({ order_id: 'ord_4' });
    await ledgerForgets(cs);

    const unknown = await sessionAnswerFor(
      keys.rival!,
      'cs_test_neverexisted000000000000000000000000000000000000000',
    );
    expect(unknown.status).toBe(404);
    expect(await sessionAnswerFor(keys.rival!, cs)).toEqual(unknown);

    const read = await getJson(`${rig.svc.url}/checkout-session?session_id=${cs}`, auth(keys.shop!));
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({
      id: cs,
      payment_intent: pi,
      payment_status: 'paid',
      amount_total: 2500,
    });
    expect(read.json.metadata).toEqual({ order_id: 'ord_4' });
    expect(await ledgerRows(cs, pi)).toEqual({
      [cs]: { owner: 'shop', metadata: { order_id: 'ord_4' } },
      [pi]: { owner: 'shop', metadata: { order_id: 'ord_4' } },
    });
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`, auth(keys.shop!))).status).toBe(200);
    expect(await sessionAnswerFor(keys.rival!, cs)).toEqual(unknown);
  });

  it("refuses 50 metadata keys on a checkout session: Stripe's 50th is the owner's", async () => {
    const before = await rig.svc.deps.stripe.checkout.sessions.list({ limit: 100 });
    const metadata = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
    const res = await postJson(
      `${rig.svc.url}/create-checkout-session`,
      checkout(metadata),
      auth(keys.shop!),
    );
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({
      status: 400,
      code: 'metadata_too_many_keys',
      param: 'metadata',
      errors: [{ path: '/body/metadata' }],
    });
    const after = await rig.svc.deps.stripe.checkout.sessions.list({ limit: 100 });
    expect(after.data.length).toBe(before.data.length);

    const fits = Object.fromEntries(Object.entries(metadata).slice(1));
    const made = await postJson(`${rig.svc.url}/create-checkout-session`, checkout(fits), auth(keys.shop!));
    expect(made.status).toBe(200);
    const session = await rig.svc.deps.stripe.checkout.sessions.retrieve(made.json.id as string);
    expect(session.metadata).toEqual({ ...fits, [OWNER_KEY]: 'shop' });
    const read = await getJson(
      `${rig.svc.url}/checkout-session?session_id=${made.json.id}`,
      auth(keys.shop!),
    );
    expect(read.json.metadata).toEqual(fits);
  });

  it('a retry across the update with the same Idempotency-Key is refused by Stripe, and nothing is made twice', async () => {
    // The first try, made by a version before sessions named their owner, whose answer was lost: the session it
    // made at Stripe, under the Stripe idempotency key that version derived from the client's, without the owner.
    const idempotencyKey = `order-${randomBytes(6).toString('hex')}`;
    const body = checkout({ order_id: 'ord_3' });
    const first = await rig.svc.deps.stripe.checkout.sessions.create(
      {
        mode: 'payment',
        line_items: body.line_items.map((li) => ({
          quantity: li.quantity,
          price_data: {
            currency: li.price_data.currency,
            unit_amount: li.price_data.unit_amount,
            product_data: { name: li.price_data.product_data.name },
          },
        })),
        success_url: body.success_url,
        cancel_url: body.cancel_url,
        metadata: body.metadata,
        payment_intent_data: { metadata: body.metadata },
      },
      { idempotencyKey: `checkout:${hash('sha256', `shop\n${idempotencyKey}`, 'hex')}` },
    );
    const before = await rig.svc.deps.stripe.checkout.sessions.list({ limit: 100 });

    const retry = await postJson(`${rig.svc.url}/create-checkout-session`, body, {
      ...auth(keys.shop!),
      'idempotency-key': idempotencyKey,
    });
    expect(retry.status).toBe(422);
    expect(retry.json).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
    const after = await rig.svc.deps.stripe.checkout.sessions.list({ limit: 100 });
    expect(after.data.map((s) => s.id)).toEqual(before.data.map((s) => s.id));
    expect(after.data.map((s) => s.id)).toContain(first.id);
  });
});

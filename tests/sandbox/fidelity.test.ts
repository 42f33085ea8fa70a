import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cardOnly,
  control,
  errorOf,
  paidIntent,
  startReceiver,
  startSandbox,
  stripeFor,
  waitFor,
  type Receiver,
  type Sandbox,
} from './helpers/fixtures.js';
import { StripeSchema } from './helpers/stripe-schema.js';

const SECRET = 'whsec_fidelity_0123456789abcdef';

/** Every API route the sandbox implements; each must be exercised with a 2xx answer below. */
const ROUTES = [
  'POST /v1/payment_intents',
  'GET /v1/payment_intents',
  'GET /v1/payment_intents/:intent',
  'POST /v1/payment_intents/:intent',
  'POST /v1/payment_intents/:intent/confirm',
  'POST /v1/payment_intents/:intent/cancel',
  'GET /v1/charges',
  'GET /v1/charges/:charge',
  'POST /v1/refunds',
  'GET /v1/refunds',
  'GET /v1/refunds/:refund',
  'POST /v1/refunds/:refund',
  'POST /v1/refunds/:refund/cancel',
  'POST /v1/checkout/sessions',
  'GET /v1/checkout/sessions',
  'GET /v1/checkout/sessions/:session',
  'POST /v1/checkout/sessions/:session/expire',
  'GET /v1/checkout/sessions/:session/line_items',
  'GET /v1/events',
  'GET /v1/events/:id',
  'GET /v1/payment_methods/:payment_method',
];

/** Routes whose only possible answer in the sandbox is an error (card refunds cannot be canceled). */
const ERROR_ONLY = new Set(['POST /v1/refunds/:refund/cancel']);

describe('wire fidelity against Stripe’s OpenAPI description', () => {
  let schema: StripeSchema;
  let sandbox: Sandbox;
  let receiver: Receiver;
  let stripe: Stripe;

  beforeAll(async () => {
    schema = new StripeSchema();
    receiver = await startReceiver();
    sandbox = await startSandbox({
      captureRequests: 10_000,
      webhookEndpoints: [{ url: receiver.url, secret: SECRET }],
      refundSettleDelayMs: 60_000,
    });
    stripe = stripeFor(sandbox);
    await drive(stripe, sandbox);
  }, 60_000);

  afterAll(async () => {
    await sandbox.close();
    await receiver.close();
  });

  it('uses the schema version the package carries', () => {
    expect(schema.version).toBe('2024-04-10');
  });

  it('exercises every implemented route, each with a successful answer where one exists', async () => {
    const implemented = (await control(sandbox, 'GET', '/routes')).json as { data: string[] };
    expect([...implemented.data].sort()).toEqual([...ROUTES].sort());
    const seen = new Map<string, Set<number>>();
    for (const r of sandbox.capturedRequests()) {
      if (r.route === null) continue;
      const key = `${r.method} ${r.route}`;
      seen.set(key, (seen.get(key) ?? new Set()).add(r.status));
    }
    for (const route of ROUTES) {
      const statuses = [...(seen.get(route) ?? [])];
      expect(statuses.length, `${route} was never called`).toBeGreaterThan(0);
      if (!ERROR_ONLY.has(route))
        expect(
          statuses.some((s) => s < 300),
          `${route} never succeeded`,
        ).toBe(true);
      const [method = '', path = ''] = route.split(' ');
      expect(schema.hasOperation(method, StripeSchema.openApiPath(path)), `${route} is not in the spec`).toBe(
        true,
      );
    }
    expect([...seen.keys()].sort()).toEqual([...ROUTES].sort());
  });

  it('every request the SDK sent matches the operation’s request schema', () => {
    const problems: string[] = [];
    for (const r of sandbox.capturedRequests()) {
      if (r.route === null) continue;
      const errors = schema.validateRequest(r.method, StripeSchema.openApiPath(r.route), r.params);
      if (errors.length > 0)
        problems.push(`${r.method} ${r.path} ${JSON.stringify(r.params)}: ${errors.join('; ')}`);
    }
    expect(problems).toEqual([]);
  });

  it('every response body matches the operation’s response schema, errors included', () => {
    const problems: string[] = [];
    let errorsChecked = 0;
    for (const r of sandbox.capturedRequests()) {
      if (r.route === null || r.response === null) continue;
      if (r.status >= 400) errorsChecked++;
      const errors = schema.validateResponse(
        r.method,
        StripeSchema.openApiPath(r.route),
        r.status,
        JSON.parse(r.response),
      );
      if (errors.length > 0) problems.push(`${r.status} ${r.method} ${r.path}: ${errors.join('; ')}`);
    }
    expect(problems).toEqual([]);
    expect(errorsChecked).toBeGreaterThan(5);
  });

  it('every webhook payload is a signed event whose data.object matches its object schema', async () => {
    const problems: string[] = [];
    const objects = new Set<string>();
    expect(receiver.hooks.length).toBeGreaterThan(20);
    for (const hook of receiver.hooks) {
      const event = stripe.webhooks.constructEvent(hook.body, hook.signature, SECRET);
      const raw = JSON.parse(hook.body) as { data: { object: { object: string } } };
      for (const e of schema.validateObject('event', raw)) problems.push(`${event.type} event: ${e}`);
      const name = raw.data.object.object;
      objects.add(name);
      for (const e of schema.validateObject(name, raw.data.object))
        problems.push(`${event.type} ${name}: ${e}`);
    }
    expect(problems).toEqual([]);
    expect([...objects].sort()).toEqual(['charge', 'checkout.session', 'payment_intent', 'refund']);
  });

  it('the mismatch check itself catches a field the spec does not know', () => {
    const intent = JSON.parse(
      sandbox
        .capturedRequests()
        .find((r) => r.route === '/v1/payment_intents' && r.method === 'POST' && r.status === 200)
        ?.response ?? '{}',
    ) as Record<string, unknown>;
    expect(schema.validateObject('payment_intent', intent)).toEqual([]);
    expect(schema.validateObject('payment_intent', { ...intent, surprise: true })).not.toEqual([]);
    expect(schema.validateObject('payment_intent', { ...intent, status: 'paid' })).not.toEqual([]);
    expect(schema.validateRequest('POST', '/v1/refunds', { amount: 'ten' })).not.toEqual([]);
    expect(schema.validateRequest('POST', '/v1/refunds', { amount: '10', bogus: '1' })).not.toEqual([]);
  });
});

/** Calls every endpoint through the SDK, success and error paths alike. */
async function drive(stripe: Stripe, sandbox: Sandbox): Promise<void> {
  const created = await stripe.paymentIntents.create({
    amount: 1999,
    currency: 'sgd',
    description: 'Fidelity',
    receipt_email: 'fid@example.com',
    metadata: { order: 'f-1' },
    statement_descriptor_suffix: 'ORDER F1',
    ...cardOnly,
  });
  await stripe.paymentIntents.retrieve(created.id);
  await stripe.paymentIntents.update(created.id, {
    amount: 2999,
    payment_method: 'pm_card_visa',
    metadata: { extra: '1' },
  });
  const confirmed = await stripe.paymentIntents.confirm(created.id, {
    expand: ['latest_charge', 'payment_method'],
  });
  await stripe.paymentIntents.retrieve(confirmed.id, { expand: ['latest_charge', 'payment_method'] });
  await stripe.paymentIntents.create({
    amount: 1000,
    currency: 'usd',
    payment_method: 'pm_card_amex',
    confirm: true,
    ...cardOnly,
  });
  const toCancel = await stripe.paymentIntents.create({ amount: 700, currency: 'eur' });
  await stripe.paymentIntents.cancel(toCancel.id, { cancellation_reason: 'abandoned' });
  await stripe.paymentIntents.list({ limit: 3, expand: ['data.latest_charge'] });
  await stripe.paymentIntents.list({ created: { gte: 0 }, starting_after: created.id });

  const declined = await errorOf(() =>
    stripe.paymentIntents.create({
      amount: 1500,
      currency: 'usd',
      payment_method: 'pm_card_chargeDeclinedExpiredCard',
      confirm: true,
      ...cardOnly,
    }),
  );
  const declinedIntent = (declined.payment_intent as Stripe.PaymentIntent).id;
  await stripe.paymentIntents.retrieve(declinedIntent);
  await errorOf(() =>
    stripe.paymentIntents.confirm(declinedIntent, { payment_method: 'pm_card_chargeDeclinedIncorrectCvc' }),
  );
  await errorOf(() => stripe.paymentIntents.retrieve('pi_missing'));
  await errorOf(() => stripe.paymentIntents.create({ amount: 10, currency: 'usd' }));
  await errorOf(() => stripe.paymentIntents.update(confirmed.id, { amount: 5 }));

  await stripe.charges.list({ payment_intent: confirmed.id, expand: ['data.payment_intent'] });
  await stripe.charges.list({ limit: 2 });
  await stripe.charges.retrieve((confirmed.latest_charge as Stripe.Charge).id, {
    expand: ['refunds', 'payment_intent'],
  });
  await errorOf(() => stripe.charges.retrieve('ch_missing'));

  const paid = await paidIntent(stripe, 5000);
  const partial = await stripe.refunds.create({
    payment_intent: paid.id,
    amount: 1000,
    reason: 'duplicate',
    metadata: { t: '1' },
  });
  await stripe.refunds.create({ charge: paid.latest_charge as string, expand: ['charge', 'payment_intent'] });
  await errorOf(() => stripe.refunds.create({ payment_intent: paid.id }));
  await errorOf(() => stripe.refunds.create({ payment_intent: toCancel.id }));
  await stripe.refunds.retrieve(partial.id, { expand: ['charge'] });
  await stripe.refunds.update(partial.id, { metadata: { t: '2' } });
  await stripe.refunds.list({ payment_intent: paid.id });
  await stripe.refunds.list({ charge: paid.latest_charge as string, limit: 1, expand: ['data.charge'] });
  await errorOf(() => stripe.refunds.cancel(partial.id));
  const failing = await paidIntent(stripe, 3000, 'pm_card_refundFail');
  const pendingFail = await stripe.refunds.create({ payment_intent: failing.id, amount: 1000 });
  await control(sandbox, 'POST', `/refunds/${pendingFail.id}/settle`);
  await stripe.refunds.retrieve(pendingFail.id);
  const slow = await paidIntent(stripe, 3000, 'pm_card_pendingRefund');
  const pendingOk = await stripe.refunds.create({ payment_intent: slow.id });
  await stripe.refunds.retrieve(pendingOk.id);
  await control(sandbox, 'POST', `/refunds/${pendingOk.id}/settle`);
  await stripe.refunds.retrieve(pendingOk.id);

  const sessionParams: Stripe.Checkout.SessionCreateParams = {
    mode: 'payment',
    success_url: 'https://shop.example/ok?cs={CHECKOUT_SESSION_ID}',
    cancel_url: 'https://shop.example/cancel',
    customer_email: 'fid@example.com',
    client_reference_id: 'cart-7',
    metadata: { cart: '7' },
    payment_intent_data: { metadata: { order: 'f-7' }, description: 'Checkout order' },
    line_items: [
      { quantity: 3, price_data: { currency: 'sgd', unit_amount: 450, product_data: { name: 'Tea' } } },
      {
        quantity: 1,
        price_data: {
          currency: 'sgd',
          unit_amount_decimal: Stripe.Decimal.from('1200'),
          product_data: { name: 'Pot' },
        },
      },
    ],
  };
  const session = await stripe.checkout.sessions.create(sessionParams);
  await stripe.checkout.sessions.retrieve(session.id, { expand: ['line_items'] });
  await stripe.checkout.sessions.listLineItems(session.id, { limit: 1 });
  await fetch(session.url as string, {
    method: 'POST',
    body: new URLSearchParams({ email: 'fid@example.com', payment_method: 'pm_card_chargeDeclined' }),
  });
  await fetch(session.url as string, {
    method: 'POST',
    body: new URLSearchParams({ email: 'fid@example.com', payment_method: 'pm_card_visa' }),
    redirect: 'manual',
  });
  await stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent'] });
  const toExpire = await stripe.checkout.sessions.create(sessionParams);
  await stripe.checkout.sessions.expire(toExpire.id);
  await errorOf(() => stripe.checkout.sessions.expire(toExpire.id));
  await stripe.checkout.sessions.list({ status: 'complete', expand: ['data.line_items'] });
  await stripe.checkout.sessions.list({ limit: 1 });
  await errorOf(() => stripe.checkout.sessions.create({ ...sessionParams, success_url: 'nope' }));
  await errorOf(() => stripe.checkout.sessions.retrieve('cs_test_missing'));

  const pm = (confirmed.payment_method as Stripe.PaymentMethod).id;
  await stripe.paymentMethods.retrieve(pm);
  await errorOf(() => stripe.paymentMethods.retrieve('pm_missing'));

  const events = await stripe.events.list({ limit: 100 });
  await stripe.events.list({ type: 'charge.succeeded', created: { gt: 0 } });
  await stripe.events.list({ types: ['refund.updated', 'refund.failed'] });
  await stripe.events.list({ delivery_success: true, limit: 5 });
  await stripe.events.retrieve(events.data[0]?.id as string);
  for (const type of ['refund.updated', 'checkout.session.completed', 'payment_intent.payment_failed']) {
    const event = events.data.find((e) => e.type === type);
    if (event) await stripe.events.retrieve(event.id);
  }
  await errorOf(() => stripe.events.retrieve('evt_missing'));

  // Let the webhook receiver see everything before the payloads are checked.
  await waitFor(
    () => sandbox.stats().webhooks.queued === 0 && sandbox.stats().webhooks.inFlight === 0,
    'webhooks',
  );
}

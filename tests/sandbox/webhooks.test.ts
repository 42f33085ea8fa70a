import Stripe from 'stripe';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cardOnly,
  control,
  paidIntent,
  startReceiver,
  startSandbox,
  stripeFor,
  waitFor,
  type Receiver,
  type Sandbox,
} from './helpers/fixtures.js';

const SECRET = 'whsec_sandboxTestSecret_0123456789';

function verify(stripe: Stripe, body: string, signature: string, secret = SECRET): Stripe.Event {
  return stripe.webhooks.constructEvent(body, signature, secret);
}

describe('webhook delivery', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(
    options: {
      statusFor?: (n: number, body: string) => number;
      enabledEvents?: string[];
      retry?: object;
    } = {},
  ): Promise<{ sandbox: Sandbox; receiver: Receiver; stripe: Stripe }> {
    const receiver = await startReceiver(options.statusFor);
    const sandbox = await startSandbox({
      webhookEndpoints: [
        {
          url: receiver.url,
          secret: SECRET,
          ...(options.enabledEvents ? { enabledEvents: options.enabledEvents } : {}),
        },
      ],
      webhookRetry: { attempts: 5, initialDelayMs: 20, maxDelayMs: 100, ...options.retry },
    });
    cleanups.push(
      () => receiver.close(),
      () => sandbox.close(),
    );
    return { sandbox, receiver, stripe: stripeFor(sandbox) };
  }

  it('POSTs every event as signed JSON that constructEvent accepts, matching the events API', async () => {
    const { receiver, stripe } = await setup();
    const intent = await paidIntent(stripe, 3100);
    await stripe.refunds.create({ payment_intent: intent.id, amount: 100 }, { idempotencyKey: 'refund-evt' });
    await waitFor(() => receiver.hooks.length >= 5, 'five webhooks');

    const events = receiver.hooks.map((hook) => {
      expect(hook.contentType).toBe('application/json; charset=utf-8');
      expect(hook.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      return verify(stripe, hook.body, hook.signature);
    });
    expect(events.map((e) => e.type).sort()).toEqual(
      [
        'charge.refunded',
        'charge.succeeded',
        'payment_intent.created',
        'payment_intent.succeeded',
        'refund.created',
      ].sort(),
    );
    for (const event of events) {
      expect(event.object).toBe('event');
      expect(event.id).toMatch(/^evt_/);
      expect(event.livemode).toBe(false);
      expect(event.api_version).toBe('2026-10-28.endive');
      expect(event.pending_webhooks).toBe(1);
      const stored = await stripe.events.retrieve(event.id);
      expect(stored.data).toEqual(event.data);
      expect(stored.type).toBe(event.type);
    }
    const succeeded = events.find((e) => e.type === 'payment_intent.succeeded');
    expect((succeeded?.data.object as Stripe.PaymentIntent).id).toBe(intent.id);
    expect((succeeded?.data.object as Stripe.PaymentIntent).status).toBe('succeeded');
    const created = events.find((e) => e.type === 'payment_intent.created');
    // The snapshot is taken when the event happens, not when it is read.
    expect((created?.data.object as Stripe.PaymentIntent).status).toBe('requires_confirmation');
    const refundCreated = events.find((e) => e.type === 'refund.created');
    expect(refundCreated?.request?.idempotency_key).toBe('refund-evt');
    expect(refundCreated?.request?.id).toMatch(/^req_/);

    // A tampered body or a wrong secret must fail verification.
    const hook = receiver.hooks[0];
    expect(() => verify(stripe, `${hook?.body} `, hook?.signature ?? '')).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
    expect(() => verify(stripe, hook?.body ?? '', hook?.signature ?? '', 'whsec_other')).toThrow();

    await waitFor(
      async () => (await stripe.events.retrieve(events[0]?.id ?? '')).pending_webhooks === 0,
      'delivery count',
    );
  });

  it('retries after a receiver 500 with a fresh signature until it gets a 2xx', async () => {
    const { receiver, stripe, sandbox } = await setup({ statusFor: (n) => (n < 2 ? 500 : 200) });
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    await waitFor(() => receiver.hooks.length >= 3, 'three attempts');
    expect(receiver.hooks.map((h) => h.status)).toEqual([500, 500, 200]);
    expect(new Set(receiver.hooks.map((h) => h.body)).size).toBe(1);
    for (const hook of receiver.hooks)
      expect(verify(stripe, hook.body, hook.signature).type).toBe('payment_intent.created');
    // The receiver logs the request before the sandbox has read its answer; wait for the sandbox's side.
    await waitFor(() => sandbox.stats().webhooks.delivered === 1, 'the delivery to be recorded');
    const stats = sandbox.stats().webhooks;
    expect(stats.delivered).toBe(1);
    expect(stats.failedAttempts).toBe(2);
    const event = (await stripe.events.list({ limit: 1 })).data[0];
    expect(event?.pending_webhooks).toBe(0);
    expect((await stripe.events.list({ delivery_success: true })).data).toHaveLength(1);
  });

  it('gives up after the configured number of attempts', async () => {
    const { receiver, stripe, sandbox } = await setup({ statusFor: () => 503, retry: { attempts: 3 } });
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    await waitFor(() => sandbox.stats().webhooks.abandoned === 1, 'the delivery to be abandoned');
    expect(receiver.hooks).toHaveLength(3);
    expect((await stripe.events.list({ delivery_success: false })).data).toHaveLength(1);
  });

  it('sends only enabled event types, and to endpoints added at runtime', async () => {
    const { receiver, stripe, sandbox } = await setup({ enabledEvents: ['charge.succeeded'] });
    const late = await startReceiver();
    cleanups.push(() => late.close());
    sandbox.addWebhookEndpoint({
      url: late.url,
      secret: 'whsec_late',
      enabledEvents: ['payment_intent.succeeded'],
    });
    const viaControl = await startReceiver();
    cleanups.push(() => viaControl.close());
    const registered = await control(sandbox, 'POST', '/webhook_endpoints', {
      url: viaControl.url,
      secret: 'whsec_ctl',
    });
    expect(registered.status).toBe(200);
    expect(
      (await control(sandbox, 'POST', '/webhook_endpoints', { url: 'ftp://x', secret: 's' })).status,
    ).toBe(400);

    await paidIntent(stripe);
    await waitFor(
      () => receiver.hooks.length === 1 && late.hooks.length === 1 && viaControl.hooks.length === 3,
      'hooks',
    );
    expect(verify(stripe, receiver.hooks[0]?.body ?? '', receiver.hooks[0]?.signature ?? '').type).toBe(
      'charge.succeeded',
    );
    expect(verify(stripe, late.hooks[0]?.body ?? '', late.hooks[0]?.signature ?? '', 'whsec_late').type).toBe(
      'payment_intent.succeeded',
    );
    const controlTypes = viaControl.hooks
      .map((h) => verify(stripe, h.body, h.signature, 'whsec_ctl').type)
      .sort();
    expect(controlTypes).toEqual(['charge.succeeded', 'payment_intent.created', 'payment_intent.succeeded']);
  });

  it('delivers the refund and checkout lifecycle events', async () => {
    const { receiver, stripe, sandbox } = await setup();
    const failing = await paidIntent(stripe, 1000, 'pm_card_refundFail');
    const refund = await stripe.refunds.create({ payment_intent: failing.id });
    await control(sandbox, 'POST', `/refunds/${refund.id}/settle`);
    await stripe.refunds.update(refund.id, { metadata: { note: 'x' } });
    const session = await stripe.checkout.sessions.create({
      mode: 'payment',
      success_url: 'https://shop.example/ok',
      line_items: [
        { quantity: 1, price_data: { currency: 'usd', unit_amount: 700, product_data: { name: 'x' } } },
      ],
    });
    await stripe.checkout.sessions.expire(session.id);
    const declined = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', ...cardOnly });
    await stripe.paymentIntents
      .confirm(declined.id, { payment_method: 'pm_card_chargeDeclined' })
      .catch(() => undefined);
    await stripe.paymentIntents.cancel(declined.id);

    const wanted = [
      'refund.failed',
      'refund.updated',
      'charge.refund.updated',
      'checkout.session.expired',
      'charge.failed',
      'payment_intent.payment_failed',
      'payment_intent.canceled',
    ];
    const seen = await waitFor(() => {
      const types = new Set<string>(receiver.hooks.map((h) => verify(stripe, h.body, h.signature).type));
      return wanted.every((t) => types.has(t)) ? types : undefined;
    }, 'lifecycle events');
    expect(seen.size).toBeGreaterThanOrEqual(wanted.length);
    const updated = receiver.hooks
      .map((h) => verify(stripe, h.body, h.signature))
      .filter((e) => e.type === 'refund.updated');
    expect(updated.map((e) => e.data.previous_attributes)).toEqual(
      expect.arrayContaining([{ status: 'succeeded' }, { metadata: {} }]),
    );
  });

  it('stops retrying when closed', async () => {
    const { receiver, stripe, sandbox } = await setup({
      statusFor: () => 500,
      retry: { attempts: 50, initialDelayMs: 50, maxDelayMs: 50 },
    });
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    await waitFor(() => receiver.hooks.length >= 2, 'two failed attempts');
    await sandbox.close();
    // Let an attempt that was already on the wire land, then make sure no retry follows (interval is 50 ms).
    await new Promise((resolve) => setTimeout(resolve, 100));
    const count = receiver.hooks.length;
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(receiver.hooks.length).toBe(count);
  });
});

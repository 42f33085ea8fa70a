import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authHeaders,
  cardOnly,
  control,
  errorOf,
  paidIntent,
  request,
  startSandbox,
  stripeFor,
  type Sandbox,
} from './helpers/fixtures.js';

/** A one-line Checkout Session with `extra` parameters. */
function oneLineSession(stripe: Stripe, extra: Partial<Stripe.Checkout.SessionCreateParams>) {
  return stripe.checkout.sessions.create({
    mode: 'payment',
    line_items: [
      { quantity: 1, price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'x' } } },
    ],
    success_url: 'https://shop.example/ok',
    ...extra,
  });
}

describe('PaymentIntents', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;

  beforeAll(async () => {
    sandbox = await startSandbox();
    stripe = stripeFor(sandbox);
  });
  afterAll(() => sandbox.close());

  it('walks create → update → confirm → succeeded, with a charge and the amount received', async () => {
    const created = await stripe.paymentIntents.create({
      amount: 1500,
      currency: 'SGD',
      metadata: { order_id: 'o-1' },
      description: 'First order',
      receipt_email: 'buyer@example.com',
      ...cardOnly,
    });
    expect(created.id).toMatch(/^pi_[A-Za-z0-9]{24}$/);
    expect(created.object).toBe('payment_intent');
    expect(created.status).toBe('requires_payment_method');
    expect(created.currency).toBe('sgd');
    expect(created.client_secret).toMatch(new RegExp(`^${created.id}_secret_[A-Za-z0-9]+$`));
    expect(created.amount_received).toBe(0);
    expect(created.latest_charge).toBeNull();
    expect(created.livemode).toBe(false);
    expect(created.automatic_payment_methods).toEqual({ allow_redirects: 'never', enabled: true });

    const updated = await stripe.paymentIntents.update(created.id, {
      amount: 2500,
      metadata: { order_id: 'o-1b', note: 'x' },
      payment_method: 'pm_card_mastercard',
    });
    expect(updated.amount).toBe(2500);
    expect(updated.metadata).toEqual({ order_id: 'o-1b', note: 'x' });
    expect(updated.status).toBe('requires_confirmation');
    expect(updated.payment_method).toMatch(/^pm_/);

    const confirmed = await stripe.paymentIntents.confirm(created.id);
    expect(confirmed.status).toBe('succeeded');
    expect(confirmed.amount_received).toBe(2500);
    expect(confirmed.latest_charge).toMatch(/^ch_/);
    expect(confirmed.last_payment_error).toBeNull();

    const charge = await stripe.charges.retrieve(confirmed.latest_charge as string);
    expect(charge.status).toBe('succeeded');
    expect(charge.amount).toBe(2500);
    expect(charge.payment_intent).toBe(created.id);
    expect(charge.payment_method_details?.card?.brand).toBe('mastercard');
    expect(charge.payment_method_details?.card?.last4).toBe('4444');

    const again = await stripe.paymentIntents.retrieve(created.id, { expand: ['latest_charge'] });
    expect((again.latest_charge as Stripe.Charge).id).toBe(charge.id);
  });

  it('creates and confirms in one call with allowed_payment_method_types, no return_url needed', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 999,
      currency: 'eur',
      payment_method: 'pm_card_amex',
      confirm: true,
      allowed_payment_method_types: ['card', 'klarna'],
    });
    expect(intent.status).toBe('succeeded');
    // Stripe keeps the compatible types and drops the others silently.
    expect(intent.payment_method_types).toEqual(['card']);
    expect(intent.automatic_payment_methods).toBeNull();
    const both = await errorOf(() =>
      stripe.paymentIntents.create({
        amount: 999,
        currency: 'eur',
        allowed_payment_method_types: ['card'],
        ...cardOnly,
      }),
    );
    expect(both).toMatchObject({ statusCode: 400, code: 'parameters_exclusive' });
  });

  it('refuses payment_method_types with 400 payment_method_types_no_longer_supported, as the pinned API version does', async () => {
    // Removed as a writable parameter in 2026-09-30.endive (docs.stripe.com/changelog/endive/2026-09-30/
    // removes-the-payment-method-types-parameter-from-payment-intents-and-setup-intents); the SDK pins an endive.
    const old = { payment_method_types: ['card'] } as Record<string, unknown>;
    const before = (await stripe.paymentIntents.list({ limit: 100 })).data.length;
    const refused = (err: Stripe.errors.StripeError) =>
      expect(err).toMatchObject({
        statusCode: 400,
        code: 'payment_method_types_no_longer_supported',
        param: 'payment_method_types',
      });
    refused(
      await errorOf(() =>
        stripe.paymentIntents.create({
          amount: 999,
          currency: 'eur',
          payment_method: 'pm_card_visa',
          confirm: true,
          ...old,
        } as Stripe.PaymentIntentCreateParams),
      ),
    );
    expect((await stripe.paymentIntents.list({ limit: 100 })).data).toHaveLength(before);
    const pi = await stripe.paymentIntents.create({ amount: 999, currency: 'eur', ...cardOnly });
    refused(await errorOf(() => stripe.paymentIntents.update(pi.id, old)));
    refused(
      await errorOf(() => stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa', ...old })),
    );
    refused(await errorOf(() => oneLineSession(stripe, old)));
    expect((await stripe.paymentIntents.retrieve(pi.id)).status).toBe('requires_payment_method');
  });

  it('moves to requires_confirmation when created with a payment method but not confirmed', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 700,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      ...cardOnly,
    });
    expect(intent.status).toBe('requires_confirmation');
  });

  it('demands return_url when redirect-based payment methods are allowed, as Stripe does', async () => {
    const err = await errorOf(() =>
      stripe.paymentIntents.create({
        amount: 1000,
        currency: 'usd',
        payment_method: 'pm_card_visa',
        confirm: true,
      }),
    );
    expect(err.statusCode).toBe(400);
    expect(err.param).toBe('return_url');
    const ok = await stripe.paymentIntents.create({
      amount: 1000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      return_url: 'https://shop.example/return',
    });
    expect(ok.status).toBe('succeeded');
  });

  /**
   * docs.stripe.com/testing#declined-payments: card_declined declines carry the issuer's decline code; the expired
   * card, incorrect CVC and processing error cards have none ("n/a"), as Stripe's own answers show (code
   * expired_card or incorrect_cvc with no decline_code). The charge's outcome still names the reason. Those two also
   * name the card field at fault in `param`, as Stripe's answers do: `exp_month` for the expired card
   * (stripe/stripe-dotnet#1566), `cvc` for an incorrect CVC (on the error and the intent's last_payment_error).
   */
  const declines: [string, string, string | undefined, string, string, string?][] = [
    [
      'pm_card_chargeDeclined',
      'card_declined',
      'generic_decline',
      'generic_decline',
      'Your card was declined.',
    ],
    [
      'pm_card_chargeDeclinedInsufficientFunds',
      'card_declined',
      'insufficient_funds',
      'insufficient_funds',
      'Your card has insufficient funds.',
    ],
    [
      'pm_card_insufficientFunds',
      'card_declined',
      'insufficient_funds',
      'insufficient_funds',
      'Your card has insufficient funds.',
    ],
    ['pm_card_chargeDeclinedLostCard', 'card_declined', 'lost_card', 'lost_card', 'Your card was declined.'],
    [
      'pm_card_chargeDeclinedStolenCard',
      'card_declined',
      'stolen_card',
      'stolen_card',
      'Your card was declined.',
    ],
    [
      'pm_card_chargeDeclinedExpiredCard',
      'expired_card',
      undefined,
      'expired_card',
      'Your card has expired.',
      'exp_month',
    ],
    [
      'pm_card_chargeDeclinedIncorrectCvc',
      'incorrect_cvc',
      undefined,
      'incorrect_cvc',
      "Your card's security code is incorrect.",
      'cvc',
    ],
    [
      'pm_card_chargeDeclinedProcessingError',
      'processing_error',
      undefined,
      'processing_error',
      'An error occurred while processing your card. Try again in a little bit.',
    ],
  ];

  it.each(declines)(
    'declines %s with 402 %s / %s and keeps the intent payable',
    async (pm, code, declineCode, outcomeReason, message, param) => {
      const err = await errorOf(() =>
        stripe.paymentIntents.create({
          amount: 2000,
          currency: 'usd',
          payment_method: pm,
          confirm: true,
          ...cardOnly,
        }),
      );
      expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
      expect(err.statusCode).toBe(402);
      expect(err.rawType).toBe('card_error');
      expect(err.code).toBe(code);
      // The SDK gives a card error without one an empty decline_code.
      expect(err.decline_code).toBe(declineCode ?? '');
      expect('decline_code' in (err.raw as object)).toBe(declineCode !== undefined);
      expect(err.message).toBe(message);
      expect(err.param).toBe(param);
      expect('param' in (err.raw as object)).toBe(param !== undefined);
      expect(err.doc_url).toBe(`https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`);
      const intent = err.payment_intent as Stripe.PaymentIntent;
      expect(intent.status).toBe('requires_payment_method');
      expect(intent.last_payment_error?.code).toBe(code);
      expect(intent.last_payment_error?.decline_code).toBe(declineCode);
      expect(intent.last_payment_error?.param).toBe(param);
      expect(intent.last_payment_error?.payment_method?.id).toMatch(/^pm_/);
      expect(err.payment_method?.object).toBe('payment_method');

      const failedCharge = await stripe.charges.retrieve(intent.latest_charge as string);
      expect(failedCharge.status).toBe('failed');
      expect(failedCharge.paid).toBe(false);
      expect(failedCharge.failure_code).toBe(code);
      expect(failedCharge.outcome?.reason).toBe(outcomeReason);
      expect(failedCharge.outcome?.type).toBe('issuer_declined');

      // The same intent can still be paid with another card.
      const retried = await stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_visa' });
      expect(retried.status).toBe('succeeded');
      expect(retried.last_payment_error).toBeNull();
    },
  );

  it('cancels with a reason and refuses to cancel or confirm twice', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1200, currency: 'usd', ...cardOnly });
    const canceled = await stripe.paymentIntents.cancel(intent.id, {
      cancellation_reason: 'requested_by_customer',
    });
    expect(canceled.status).toBe('canceled');
    expect(canceled.cancellation_reason).toBe('requested_by_customer');
    expect(canceled.canceled_at).toBeGreaterThan(0);

    const again = await errorOf(() => stripe.paymentIntents.cancel(intent.id));
    expect(again.statusCode).toBe(400);
    expect(again.code).toBe('payment_intent_unexpected_state');
    const confirm = await errorOf(() =>
      stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_visa' }),
    );
    expect(confirm.code).toBe('payment_intent_unexpected_state');
  });

  it('refuses to change the amount of a succeeded intent but still takes metadata and description', async () => {
    const paid = await paidIntent(stripe);
    const err = await errorOf(() => stripe.paymentIntents.update(paid.id, { amount: 100 }));
    expect(err.statusCode).toBe(400);
    expect(err.code).toBe('payment_intent_unexpected_state');
    expect(err.param).toBe('amount');
    const updated = await stripe.paymentIntents.update(paid.id, {
      metadata: { shipped: 'yes' },
      description: 'Shipped',
    });
    expect(updated.metadata).toEqual({ shipped: 'yes' });
    expect(updated.description).toBe('Shipped');
    const cleared = await stripe.paymentIntents.update(paid.id, {
      metadata: '' as unknown as Stripe.MetadataParam,
    });
    expect(cleared.metadata).toEqual({});
    const confirmAgain = await errorOf(() => stripe.paymentIntents.confirm(paid.id));
    expect(confirmAgain.message).toContain('already succeeded');
  });

  it('validates amounts like Stripe', async () => {
    const tooSmall = await errorOf(() => stripe.paymentIntents.create({ amount: 49, currency: 'sgd' }));
    expect(tooSmall.statusCode).toBe(400);
    expect(tooSmall.code).toBe('amount_too_small');
    expect(tooSmall.param).toBe('amount');

    const eur = await errorOf(() => stripe.paymentIntents.create({ amount: 10, currency: 'eur' }));
    expect(eur.message).toBe('Amount must be at least €0.50 eur');

    const tooLarge = await errorOf(() =>
      stripe.paymentIntents.create({ amount: 100_000_000, currency: 'usd' }),
    );
    expect(tooLarge.code).toBe('amount_too_large');

    const zero = await errorOf(() => stripe.paymentIntents.create({ amount: 0, currency: 'usd' }));
    expect(zero.param).toBe('amount');

    const fraction = await errorOf(() => stripe.paymentIntents.create({ amount: 12.5, currency: 'usd' }));
    expect(fraction.code).toBe('parameter_invalid_integer');
    expect(fraction.message).toBe('Invalid integer: 12.5');

    const max = await stripe.paymentIntents.create({ amount: 99_999_999, currency: 'usd' });
    expect(max.amount).toBe(99_999_999);
    // "up to twelve digits for IDR" (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
    const rupiah = await stripe.paymentIntents.create({ amount: 999_999_999_999, currency: 'idr' });
    expect(rupiah.amount).toBe(999_999_999_999);
    const tooManyRupiah = await errorOf(() =>
      stripe.paymentIntents.create({ amount: 1_000_000_000_000, currency: 'idr' }),
    );
    expect(tooManyRupiah).toMatchObject({ code: 'amount_too_large', param: 'amount' });
    const yen = await stripe.paymentIntents.create({ amount: 50, currency: 'jpy' });
    expect(yen.currency).toBe('jpy');

    const currency = await errorOf(() => stripe.paymentIntents.create({ amount: 5000, currency: 'xyz' }));
    expect(currency.param).toBe('currency');
  });

  it('reports missing and unknown parameters with Stripe codes', async () => {
    const missing = await errorOf(() =>
      stripe.paymentIntents.create({ currency: 'usd' } as Stripe.PaymentIntentCreateParams),
    );
    expect(missing.code).toBe('parameter_missing');
    expect(missing.param).toBe('amount');
    expect(missing.message).toBe('Missing required param: amount.');

    const unknown = await errorOf(() =>
      stripe.paymentIntents.create({
        amount: 500,
        currency: 'usd',
        colour: 'red',
      } as Stripe.PaymentIntentCreateParams),
    );
    expect(unknown.statusCode).toBe(400);
    expect(unknown.code).toBe('parameter_unknown');
    expect(unknown.param).toBe('colour');
    expect(unknown.message).toBe('Received unknown parameter: colour');

    const nested = await errorOf(() =>
      stripe.paymentIntents.create({
        amount: 500,
        currency: 'usd',
        automatic_payment_methods: { enabled: true, bogus: 'x' },
      } as unknown as Stripe.PaymentIntentCreateParams),
    );
    expect(nested.param).toBe('automatic_payment_methods[bogus]');

    const badBool = await request(sandbox, 'POST', '/v1/payment_intents', {
      headers: authHeaders(),
      body: 'amount=500&currency=usd&confirm=maybe',
    });
    expect(badBool.status).toBe(400);
    expect((badBool.json as { error: { param: string } }).error.param).toBe('confirm');
  });

  it('answers unknown intents with 404 resource_missing and Stripe’s message', async () => {
    const err = await errorOf(() => stripe.paymentIntents.retrieve('pi_123'));
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.statusCode).toBe(404);
    expect(err.code).toBe('resource_missing');
    expect(err.message).toBe("No such payment_intent: 'pi_123'");
  });

  it('refuses a receipt_email that is not an address with 400 email_invalid, as Stripe does', async () => {
    // Stripe checks receipt_email on create, update and confirm (and on a Checkout Session's
    // payment_intent_data), not only a session's customer_email.
    const bad = 'buyer@localhost';
    const expectInvalid = (err: Stripe.errors.StripeError, param: string) => {
      expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect(err).toMatchObject({ statusCode: 400, code: 'email_invalid', param });
      expect(err.message).toBe(`Invalid email address: ${bad}`);
    };
    const before = (await stripe.paymentIntents.list({ limit: 100 })).data.length;
    expectInvalid(
      await errorOf(() =>
        stripe.paymentIntents.create({ amount: 500, currency: 'usd', receipt_email: bad, ...cardOnly }),
      ),
      'receipt_email',
    );
    expect((await stripe.paymentIntents.list({ limit: 100 })).data).toHaveLength(before);

    const pi = await stripe.paymentIntents.create({ amount: 500, currency: 'usd', ...cardOnly });
    expectInvalid(
      await errorOf(() => stripe.paymentIntents.update(pi.id, { receipt_email: bad })),
      'receipt_email',
    );
    expectInvalid(
      await errorOf(() =>
        stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa', receipt_email: bad }),
      ),
      'receipt_email',
    );
    expect(await stripe.paymentIntents.retrieve(pi.id)).toMatchObject({
      status: 'requires_payment_method',
      receipt_email: null,
    });
    expectInvalid(
      await errorOf(() => oneLineSession(stripe, { payment_intent_data: { receipt_email: bad } })),
      'payment_intent_data[receipt_email]',
    );
    // A valid address is taken, and '' unsets it.
    const updated = await stripe.paymentIntents.update(pi.id, { receipt_email: 'buyer@example.com' });
    expect(updated.receipt_email).toBe('buyer@example.com');
    expect((await stripe.paymentIntents.update(pi.id, { receipt_email: '' })).receipt_email).toBeNull();
  });

  it('a card that asks for 3D Secure leaves the intent requires_action until the customer authenticates', async () => {
    // Stripe's test cards pm_card_threeDSecure2Required and pm_card_authenticationRequired
    // (docs.stripe.com/testing#regulatory-cards): confirming through the API charges nothing yet.
    const pending = await stripe.paymentIntents.create({
      amount: 2000,
      currency: 'usd',
      payment_method: 'pm_card_threeDSecure2Required',
      confirm: true,
      ...cardOnly,
    });
    expect(pending).toMatchObject({
      status: 'requires_action',
      amount_received: 0,
      latest_charge: null,
      next_action: { type: 'use_stripe_sdk' },
    });
    expect(pending.payment_method).toMatch(/^pm_/);
    // Confirmed with a return_url, the customer is sent to the challenge page, addressed (as on Stripe) with
    // the intent's client secret.
    const redirected = await stripe.paymentIntents.create({
      amount: 2000,
      currency: 'usd',
      payment_method: 'pm_card_threeDSecure2Required',
      confirm: true,
      return_url: 'https://shop.example/back',
      ...cardOnly,
    });
    expect(redirected.next_action).toMatchObject({
      type: 'redirect_to_url',
      redirect_to_url: { return_url: 'https://shop.example/back' },
    });
    expect(redirected.next_action?.redirect_to_url?.url).toContain(
      `payment_intent_client_secret=${redirected.client_secret}`,
    );
    const asked = await stripe.events.list({ type: 'payment_intent.requires_action' });
    expect(asked.data.map((e) => (e.data.object as { id: string }).id)).toContain(pending.id);

    const passed = await control(sandbox, 'POST', `/payment_intents/${pending.id}/authenticate`, {
      outcome: 'succeed',
    });
    expect(passed.status).toBe(200);
    const paid = await stripe.paymentIntents.retrieve(pending.id);
    expect(paid).toMatchObject({ status: 'succeeded', amount_received: 2000, next_action: null });
    expect(paid.latest_charge).toMatch(/^ch_/);
    const again = await control(sandbox, 'POST', `/payment_intents/${pending.id}/authenticate`, {});
    expect(again.status).toBe(400);

    const refused = await stripe.paymentIntents.create({
      amount: 2000,
      currency: 'usd',
      payment_method: 'pm_card_authenticationRequired',
      confirm: true,
      ...cardOnly,
    });
    expect(refused.status).toBe('requires_action');
    await control(sandbox, 'POST', `/payment_intents/${refused.id}/authenticate`, { outcome: 'fail' });
    const failed = await stripe.paymentIntents.retrieve(refused.id);
    expect(failed).toMatchObject({
      status: 'requires_payment_method',
      payment_method: null,
      next_action: null,
      latest_charge: null,
      last_payment_error: { code: 'payment_intent_authentication_failure', type: 'invalid_request_error' },
    });
  });

  it('rejects an unknown payment method', async () => {
    const err = await errorOf(() =>
      stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_nope', ...cardOnly }),
    );
    expect(err.code).toBe('resource_missing');
    expect(err.param).toBe('payment_method');
    expect(err.message).toBe("No such PaymentMethod: 'pm_nope'");
  });

  it('lists newest first and pages with starting_after, ending_before and created filters', async () => {
    const fresh = await startSandbox();
    try {
      const client = stripeFor(fresh);
      const made: Stripe.PaymentIntent[] = [];
      for (let i = 0; i < 5; i++)
        made.push(await client.paymentIntents.create({ amount: 100 + i, currency: 'usd' }));
      const newestFirst = [...made].reverse().map((p) => p.id);

      const first = await client.paymentIntents.list({ limit: 2 });
      expect(first.data.map((p) => p.id)).toEqual(newestFirst.slice(0, 2));
      expect(first.has_more).toBe(true);
      expect(first.url).toBe('/v1/payment_intents');

      const second = await client.paymentIntents.list({
        limit: 2,
        starting_after: first.data[1]?.id as string,
      });
      expect(second.data.map((p) => p.id)).toEqual(newestFirst.slice(2, 4));
      const last = await client.paymentIntents.list({
        limit: 2,
        starting_after: second.data[1]?.id as string,
      });
      expect(last.data.map((p) => p.id)).toEqual(newestFirst.slice(4));
      expect(last.has_more).toBe(false);

      const back = await client.paymentIntents.list({ limit: 2, ending_before: newestFirst[4] as string });
      expect(back.data.map((p) => p.id)).toEqual(newestFirst.slice(2, 4));
      expect(back.has_more).toBe(true);

      const all: string[] = [];
      for await (const pi of client.paymentIntents.list({ limit: 2 })) all.push(pi.id);
      expect(all).toEqual(newestFirst);

      const created = made[0]?.created as number;
      const none = await client.paymentIntents.list({ created: { lt: created } });
      expect(none.data).toEqual([]);
      const some = await client.paymentIntents.list({ created: { gte: created, lte: created + 3600 } });
      expect(some.data).toHaveLength(5);

      const badLimit = await errorOf(() => client.paymentIntents.list({ limit: 101 }));
      expect(badLimit.param).toBe('limit');
      const badCursor = await errorOf(() => client.paymentIntents.list({ starting_after: 'pi_missing' }));
      expect(badCursor.param).toBe('starting_after');
    } finally {
      await fresh.close();
    }
  });
});

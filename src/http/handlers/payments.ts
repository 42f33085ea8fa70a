import { clientMetadata, type PaymentsService } from '../../payments/service.js';
import type { Caller, Handlers, OperationId, ReplayBuilder } from '../operations.js';
import { ProblemError } from '../problem.js';

export interface PaymentHandlerOptions {
  /**
   * The shop's browser origins (CORS_ORIGINS): where a publishable key may send customers after checkout, unless
   * its caller carries its owner's own (Caller.origins, from OWNER_ORIGINS).
   */
  shopOrigins?: readonly string[];
}

/** The URL's origin once Stripe has put a session id in place of the placeholder; null when it has none. */
function redirectOrigin(url: string): string | null {
  try {
    const origin = new URL(url.split('{CHECKOUT_SESSION_ID}').join('cs_x')).origin;
    return origin === 'null' ? null : origin;
  } catch {
    return null;
  }
}

/**
 * A publishable key is public (it sits in the shop's pages), so anyone can create checkout sessions with it. Were
 * its `success_url` and `cancel_url` free, anyone could send a customer through a genuine checkout page of the shop
 * and then on to a site of their own, which the customer would take for the shop's (an open redirect behind a
 * trusted page). A publishable key may only send customers back to the shop's own origins: its owner's
 * (OWNER_ORIGINS, Caller.origins) where they are listed, else CORS_ORIGINS. With two shops on one service
 * CORS_ORIGINS lists both, and one shop's key could send its customers on to the other's site.
 */
function requireShopRedirects(
  caller: Caller,
  urls: { success_url: string; cancel_url: string },
  shopOrigins: ReadonlySet<string>,
): void {
  if (caller.kind !== 'publishable') return;
  const ownOrigins = caller.origins;
  const foreign = (['success_url', 'cancel_url'] as const).filter((param) => {
    const origin = redirectOrigin(urls[param]);
    return origin === null || !(ownOrigins ? ownOrigins.includes(origin) : shopOrigins.has(origin));
  });
  if (foreign.length === 0) return;
  const which = !ownOrigins
    ? "one of the shop's origins (CORS_ORIGINS)"
    : ownOrigins.length > 0
      ? "one of the origins OWNER_ORIGINS lists for this key's owner"
      : "one of the key's owner's origins, and OWNER_ORIGINS lists none for it";
  throw new ProblemError(400, `With a publishable key, ${foreign.join(' and ')} must be on ${which}.`, {
    code: 'redirect_not_allowed',
    param: foreign[0],
    errors: foreign.map((param) => ({
      path: `/body/${param}`,
      message: "is not on one of the shop's origins",
    })),
  });
}

/**
 * A publishable key is public, so confirming with it on the server let anyone run cards through the shop's Stripe
 * account under its secret key, one request each, and read Stripe's verdict on each card (an error code such as
 * `incorrect_cvc`, or a decline code such as `insufficient_funds`): card testing, which costs the shop fees and disputes, and can get its
 * Stripe account closed. The browser confirms with Stripe.js and the client secret instead, where Stripe's own
 * defences see the customer.
 */
function refuseBrowserConfirm(caller: Caller, confirm: boolean | undefined): void {
  if (caller.kind !== 'publishable' || !confirm) return;
  throw new ProblemError(
    403,
    'Publishable keys may not confirm payment intents: confirm in the browser with Stripe.js and the client secret.',
    { code: 'insufficient_scope', param: 'confirm' },
  );
}

export const paymentHandlers = (payments: PaymentsService, opts: PaymentHandlerOptions = {}) => {
  const shopOrigins = new Set((opts.shopOrigins ?? []).map((o) => redirectOrigin(o) ?? o));
  return {
    async createCheckoutSession({ body, ctx }) {
      requireShopRedirects(ctx.caller, body, shopOrigins);
      const s = await payments.createCheckoutSession(ctx.caller, body, ctx.idempotencyKey, ctx.requestId);
      return {
        status: 200,
        body: {
          url: s.url ?? '',
          id: s.id,
          ...(s.status ? { status: s.status } : {}),
          payment_status: s.payment_status,
          ...(s.amount_total !== null ? { amount_total: s.amount_total } : {}),
          ...(s.currency ? { currency: s.currency } : {}),
          expires_at: s.expires_at,
        },
      };
    },

    async getCheckoutSession({ query, ctx }) {
      const s = await payments.getCheckoutSession(ctx.caller, query.session_id, ctx.requestId);
      const pi = typeof s.payment_intent === 'string' ? s.payment_intent : (s.payment_intent?.id ?? null);
      return {
        status: 200,
        body: {
          id: s.id,
          payment_intent: pi,
          amount_total: s.amount_total,
          currency: s.currency,
          customer_email: s.customer_details?.email ?? s.customer_email ?? null,
          payment_status: s.payment_status,
          status: s.status,
          // As the client gave it: the owner the service names at Stripe is the service's own.
          metadata: clientMetadata(s.metadata),
        },
      };
    },

    async createPaymentIntent({ body, ctx }) {
      refuseBrowserConfirm(ctx.caller, body.confirm);
      const pi = await payments.createPaymentIntent(ctx.caller, body, ctx.idempotencyKey, ctx.requestId);
      const answer = { success: true, paymentIntentId: pi.id, status: pi.status } as const;
      // The client secret is not kept with the Idempotency-Key (Stripe asks that it be stored nowhere): a replay
      // reads it from Stripe again (paymentReplays).
      return { status: 200, body: { ...answer, clientSecret: pi.client_secret ?? '' }, replayBody: answer };
    },

    async getPaymentIntent({ path, ctx }) {
      const { pi, amountRefunded } = await payments.getPaymentIntent(
        ctx.caller,
        path.payment_intent_id,
        ctx.requestId,
      );
      return {
        status: 200,
        body: {
          id: pi.id,
          amount: pi.amount,
          currency: pi.currency,
          status: pi.status,
          // As the client gave it: the owner the service names at Stripe is the service's own.
          metadata: clientMetadata(pi.metadata),
          amount_received: pi.amount_received,
          amount_refunded: amountRefunded,
          created: pi.created,
        },
      };
    },
  } satisfies Partial<Handlers>;
};

/** Rebuilds replayed answers whose secrets were not kept (see Reply.replayBody). */
export const paymentReplays = (payments: PaymentsService) =>
  ({
    async createPaymentIntent(kept, ctx) {
      const answer = kept as { paymentIntentId: string; clientSecret?: string };
      // Kept before client secrets were left out: as it was.
      if (typeof answer.clientSecret === 'string') return answer;
      return {
        ...answer,
        clientSecret: await payments.clientSecretOf(answer.paymentIntentId, ctx.requestId),
      };
    },
  }) satisfies Partial<Record<OperationId, ReplayBuilder>>;

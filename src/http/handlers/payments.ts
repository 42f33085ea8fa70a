import type { PaymentsService } from '../../payments/service.js';
import type { Handlers, OperationId, ReplayBuilder } from '../operations.js';

type Metadata = Record<string, string>;

export const paymentHandlers = (payments: PaymentsService) =>
  ({
    async createCheckoutSession({ body, ctx }) {
      const s = await payments.createCheckoutSession(ctx.caller, body, ctx.idempotencyKey);
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
      const s = await payments.getCheckoutSession(ctx.caller, query.session_id);
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
          metadata: (s.metadata ?? {}) as Metadata,
        },
      };
    },

    async createPaymentIntent({ body, ctx }) {
      const pi = await payments.createPaymentIntent(ctx.caller, body, ctx.idempotencyKey);
      const answer = { success: true, paymentIntentId: pi.id, status: pi.status } as const;
      // The client secret is not kept with the Idempotency-Key (Stripe asks that it be stored nowhere): a replay
      // reads it from Stripe again (paymentReplays).
      return { status: 200, body: { ...answer, clientSecret: pi.client_secret ?? '' }, replayBody: answer };
    },

    async getPaymentIntent({ path, ctx }) {
      const { pi, amountRefunded } = await payments.getPaymentIntent(ctx.caller, path.payment_intent_id);
      return {
        status: 200,
        body: {
          id: pi.id,
          amount: pi.amount,
          currency: pi.currency,
          status: pi.status,
          metadata: (pi.metadata ?? {}) as Metadata,
          amount_received: pi.amount_received,
          amount_refunded: amountRefunded,
          created: pi.created,
        },
      };
    },
  }) satisfies Partial<Handlers>;

/** Rebuilds replayed answers whose secrets were not kept (see Reply.replayBody). */
export const paymentReplays = (payments: PaymentsService) =>
  ({
    async createPaymentIntent(kept) {
      const answer = kept as { paymentIntentId: string; clientSecret?: string };
      // Kept before client secrets were left out: as it was.
      if (typeof answer.clientSecret === 'string') return answer;
      return { ...answer, clientSecret: await payments.clientSecretOf(answer.paymentIntentId) };
    },
  }) satisfies Partial<Record<OperationId, ReplayBuilder>>;

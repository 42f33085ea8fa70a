import type { PaymentsService } from '../../payments/service.js';
import type { Handlers } from '../operations.js';

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
      return {
        status: 200,
        body: {
          success: true,
          clientSecret: pi.client_secret ?? '',
          paymentIntentId: pi.id,
          status: pi.status,
        },
      };
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

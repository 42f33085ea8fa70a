import type { WebhookOutcome } from '../../ops/metrics.js';
import type { WebhookService } from '../../webhooks/service.js';
import type { Handlers } from '../operations.js';

export const webhookHandlers = (
  webhooks: WebhookService,
  metrics?: { observeWebhook(type: string, outcome: WebhookOutcome): void },
) =>
  ({
    async handleStripeWebhook({ body, headers, ctx }) {
      // Node lower-cases incoming header names; the contract spells it the way Stripe documents it.
      const signature = (headers as Record<string, string | string[] | undefined>)['stripe-signature'];
      let delivery: ReturnType<WebhookService['verify']>;
      try {
        delivery = webhooks.verify(body, signature);
      } catch (err) {
        metrics?.observeWebhook('unverified', 'rejected');
        throw err;
      }
      if (delivery.thin) {
        // Answered 2xx so that Stripe does not send it again for days; nothing is stored or applied.
        webhooks.ignoreThin(delivery.thin, ctx.requestId);
        metrics?.observeWebhook(delivery.thin.type, 'ignored');
        return { status: 200, body: { success: true } };
      }
      const event = delivery.event;
      // A verified event the service could not store (the database unreachable: 503, and Stripe sends it again)
      // is not a rejected one.
      const result = await webhooks.store(event, ctx.requestId).catch((err: unknown) => {
        metrics?.observeWebhook(event.type, 'failed');
        throw err;
      });
      metrics?.observeWebhook(result.type, result.duplicate ? 'duplicate' : 'processed');
      return { status: 200, body: { success: true, ...(result.duplicate ? { duplicate: true } : {}) } };
    },
  }) satisfies Partial<Handlers>;

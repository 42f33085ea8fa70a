import type { WebhookService } from '../../webhooks/service.js';
import type { Handlers } from '../operations.js';

export const webhookHandlers = (
  webhooks: WebhookService,
  metrics?: { observeWebhook(type: string, outcome: 'processed' | 'duplicate' | 'rejected'): void },
) =>
  ({
    async handleStripeWebhook({ body, headers }) {
      // Node lower-cases incoming header names; the contract spells it the way Stripe documents it.
      const signature = (headers as Record<string, string | string[] | undefined>)['stripe-signature'];
      const result = await webhooks.receive(body, signature).catch((err: unknown) => {
        metrics?.observeWebhook('unverified', 'rejected');
        throw err;
      });
      metrics?.observeWebhook(result.type, result.duplicate ? 'duplicate' : 'processed');
      return { status: 200, body: { success: true, ...(result.duplicate ? { duplicate: true } : {}) } };
    },
  }) satisfies Partial<Handlers>;

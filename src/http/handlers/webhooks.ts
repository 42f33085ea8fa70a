import type { WebhookService } from '../../webhooks/service.js';
import type { Handlers } from '../operations.js';

export const webhookHandlers = (webhooks: WebhookService) =>
  ({
    async handleStripeWebhook({ body, headers }) {
      const result = await webhooks.receive(
        body,
        headers['Stripe-Signature'] ?? (headers as Record<string, string>)['stripe-signature'],
      );
      return { status: 200, body: { success: true, ...(result.duplicate ? { duplicate: true } : {}) } };
    },
  }) satisfies Partial<Handlers>;

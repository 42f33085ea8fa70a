/**
 * Stripe webhooks: verify the signature on the exact bytes, store each event once (inbox, unique by
 * event id) together with its outbox row for the `stripe.events` exchange, answer quickly, and apply
 * the event to the ledger afterwards, retrying until it sticks. Stripe delivers at least once and in
 * any order, so every step is idempotent and the ledger only moves forward.
 */
import type Stripe from 'stripe';
import type { Logger } from 'pino';
import { ProblemError } from '../http/problem.js';
import type { PaymentsService } from '../payments/service.js';
import type { RefundService } from '../refunds/service.js';
import type { InboxEvent, Store } from '../store/index.js';
import type { StripeClient } from '../stripe/client.js';

export const SIGNATURE_TOLERANCE_SECONDS = 300;

export interface WebhookServiceDeps {
  store: Store;
  stripe: StripeClient;
  payments: PaymentsService;
  refunds: RefundService;
  logger: Logger;
  /** Signing secret (whsec_...). */
  secret: string;
  /** Topic exchange verified events are published to. */
  eventsExchange: string;
}

export interface ReceiveResult {
  eventId: string;
  type: string;
  duplicate: boolean;
}

function objectIdOf(event: Stripe.Event): string | null {
  const obj = event.data?.object as { id?: unknown } | undefined;
  return typeof obj?.id === 'string' ? obj.id : null;
}

const REFUND_EVENTS = new Set(['refund.created', 'refund.updated', 'refund.failed', 'charge.refund.updated']);
const PAYMENT_INTENT_EVENTS = new Set([
  'payment_intent.succeeded',
  'payment_intent.payment_failed',
  'payment_intent.canceled',
  'payment_intent.processing',
  'payment_intent.requires_action',
]);
const SESSION_EVENTS = new Set([
  'checkout.session.completed',
  'checkout.session.expired',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
]);
const FINAL_REFUND_STATUSES = new Set(['succeeded', 'failed', 'canceled']);

export type WebhookService = ReturnType<typeof createWebhookService>;

export function createWebhookService(deps: WebhookServiceDeps) {
  const { store, stripe, payments, refunds } = deps;
  const log = deps.logger.child({ component: 'webhooks' });
  const inFlight = new Set<Promise<unknown>>();

  function verify(rawBody: Buffer, signature: string | string[] | undefined): Stripe.Event {
    if (typeof signature !== 'string' || signature.length === 0) {
      throw new ProblemError(400, 'Missing Stripe-Signature header.', { code: 'signature_missing' });
    }
    if (rawBody.length === 0) {
      throw new ProblemError(400, 'Empty webhook body.', { code: 'signature_invalid' });
    }
    try {
      return stripe.webhooks.constructEvent(rawBody, signature, deps.secret, SIGNATURE_TOLERANCE_SECONDS);
    } catch (err) {
      // The reason (bad format, wrong secret, stale timestamp) helps the sender; the signature itself is never echoed.
      const stale = err instanceof Error && /timestamp/i.test(err.message);
      throw new ProblemError(
        400,
        stale
          ? 'Webhook timestamp is outside the tolerance window.'
          : 'Webhook signature verification failed.',
        { code: 'signature_invalid' },
      );
    }
  }

  /** Applies one event to the ledger. Safe to run again for the same event. */
  async function apply(event: Stripe.Event): Promise<void> {
    const type = event.type as string;
    if (REFUND_EVENTS.has(type)) {
      let refund = event.data.object as Stripe.Refund;
      // A non-final snapshot may already be outdated when it arrives; ask Stripe for the current state.
      if (!FINAL_REFUND_STATUSES.has(refund.status ?? '')) refund = await stripe.refunds.retrieve(refund.id);
      await refunds.applyStripeRefund(refund);
      return;
    }
    if (type === 'charge.refunded') {
      const charge = event.data.object as Stripe.Charge;
      // The charge lists no refunds by default; read them, so refunds made elsewhere are learnt too.
      for await (const refund of stripe.refunds.list({ charge: charge.id, limit: 100 })) {
        await refunds.applyStripeRefund(refund);
      }
      return;
    }
    if (PAYMENT_INTENT_EVENTS.has(type)) {
      const pi = event.data.object as Stripe.PaymentIntent;
      await payments.applyStripePaymentIntent(await stripe.paymentIntents.retrieve(pi.id));
      return;
    }
    if (SESSION_EVENTS.has(type)) {
      await payments.applyStripeSession(event.data.object as Stripe.Checkout.Session);
      return;
    }
    log.debug({ type }, 'event type not used by the ledger');
  }

  async function processStored(e: Pick<InboxEvent, 'eventId' | 'payload' | 'attempts'>): Promise<boolean> {
    try {
      await apply(e.payload as Stripe.Event);
      await store.inbox.markProcessed(e.eventId);
      return true;
    } catch (err) {
      const delayMs = Math.min(60_000, 1000 * 2 ** Math.min(e.attempts, 6));
      await store.inbox
        .markFailed(
          e.eventId,
          err instanceof Error ? err.message : String(err),
          new Date(Date.now() + delayMs),
        )
        .catch(() => undefined);
      log.warn({ err, eventId: e.eventId }, 'webhook event processing failed; will retry');
      return false;
    }
  }

  return {
    verify,

    /** Verifies and stores the event (once); processing starts after the commit, off the request path. */
    async receive(rawBody: Buffer, signature: string | string[] | undefined): Promise<ReceiveResult> {
      const event = verify(rawBody, signature);
      const inserted = await store.transaction(async (tx) => {
        const fresh = await tx.inbox.insertIfAbsent({
          eventId: event.id,
          type: event.type,
          objectId: objectIdOf(event),
          payload: event,
        });
        if (fresh) {
          await tx.outbox.add({
            destination: `exchange:${deps.eventsExchange}`,
            routingKey: event.type,
            messageId: event.id,
            payload: event,
          });
        }
        return fresh;
      });
      if (inserted) {
        const p = processStored({ eventId: event.id, payload: event, attempts: 0 }).finally(() =>
          inFlight.delete(p),
        );
        inFlight.add(p);
      }
      log.info({ eventId: event.id, type: event.type, duplicate: !inserted }, 'webhook received');
      return { eventId: event.id, type: event.type, duplicate: !inserted };
    },

    /** Retries events whose processing failed or was interrupted; returns how many were processed. */
    async retryPending(limit = 100): Promise<number> {
      const batch = await store.inbox.claimUnprocessed(limit);
      let ok = 0;
      for (const e of batch) if (await processStored(e)) ok++;
      return ok;
    },

    /** Waits for processing started by receive() (shutdown and tests). */
    async idle(): Promise<void> {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

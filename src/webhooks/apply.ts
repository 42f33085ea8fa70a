/**
 * What each Stripe event means for the ledger. Stripe delivers at least once and in any order, so
 * every branch is idempotent and relies on the domain services to move state forward only; where
 * the snapshot in the event may already be outdated, the object is read again from Stripe first.
 */
import type Stripe from 'stripe';
import type { Logger } from 'pino';
import type { PaymentsService } from '../payments/service.js';
import type { RefundService } from '../refunds/service.js';
import { withoutCallSite, type StripeClient } from '../stripe/client.js';

/** Events whose `data.object` is a refund. */
export const REFUND_EVENT_TYPES: ReadonlySet<string> = new Set([
  'refund.created',
  'refund.updated',
  'refund.failed',
  'charge.refund.updated',
]);

export const PAYMENT_INTENT_EVENT_TYPES: ReadonlySet<string> = new Set([
  'payment_intent.succeeded',
  'payment_intent.payment_failed',
  'payment_intent.canceled',
  'payment_intent.processing',
  'payment_intent.requires_action',
]);

export const CHECKOUT_SESSION_EVENT_TYPES: ReadonlySet<string> = new Set([
  'checkout.session.completed',
  'checkout.session.expired',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
]);

export const CHARGE_REFUNDED_EVENT_TYPE = 'charge.refunded';

/**
 * Refund statuses a snapshot is applied in as it is, without asking Stripe again. Stripe never leaves failed or
 * canceled; it can leave succeeded (for failed), but the ledger never moves from failed back to succeeded, so
 * an old succeeded snapshot applied after the failure changes nothing.
 */
const FINAL_REFUND_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'canceled']);

export interface EventApplierDeps {
  stripe: StripeClient;
  payments: PaymentsService;
  refunds: RefundService;
  logger: Logger;
}

export type ApplyResult = 'applied' | 'ignored' | 'object_missing';

function isMissingObject(err: unknown): boolean {
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  return e?.statusCode === 404 || e?.code === 'resource_missing';
}

export function createEventApplier(deps: EventApplierDeps) {
  const { stripe, payments, refunds } = deps;
  const log = deps.logger.child({ component: 'webhooks' });

  /** Reads the current object; null when Stripe does not know it (nothing to apply, and retrying will not help). */
  async function current<T>(read: () => Promise<T>, id: string): Promise<T | null> {
    try {
      return await read();
    } catch (err) {
      if (!isMissingObject(err)) throw err;
      log.warn({ objectId: id }, 'event names an object Stripe does not know; nothing to apply');
      return null;
    }
  }

  async function applyRefund(snapshot: Stripe.Refund): Promise<ApplyResult> {
    const refund = FINAL_REFUND_STATUSES.has(snapshot.status ?? '')
      ? snapshot
      : await current(() => withoutCallSite(() => stripe.refunds.retrieve(snapshot.id)), snapshot.id);
    if (!refund) return 'object_missing';
    await refunds.applyStripeRefund(refund);
    return 'applied';
  }

  /** Applies one event. Safe to run any number of times, concurrently, in any order. */
  return async function apply(event: Stripe.Event): Promise<ApplyResult> {
    const type = event.type as string;
    const object = event.data.object as { id?: unknown };
    if (typeof object.id !== 'string') return 'ignored';
    const id = object.id;

    if (REFUND_EVENT_TYPES.has(type)) return applyRefund(event.data.object as Stripe.Refund);

    if (type === CHARGE_REFUNDED_EVENT_TYPE) {
      // The charge in the event lists no refunds; read them all, which also learns refunds made elsewhere.
      const listed = await current(async () => {
        const all: Stripe.Refund[] = [];
        for await (const refund of stripe.refunds.list({ charge: id, limit: 100 })) all.push(refund);
        return all;
      }, id);
      if (!listed) return 'object_missing';
      for (const refund of listed) await applyRefund(refund);
      return listed.length > 0 ? 'applied' : 'ignored';
    }

    if (PAYMENT_INTENT_EVENT_TYPES.has(type)) {
      const pi = await current(() => withoutCallSite(() => stripe.paymentIntents.retrieve(id)), id);
      if (!pi) return 'object_missing';
      await payments.applyStripePaymentIntent(pi);
      return 'applied';
    }

    if (CHECKOUT_SESSION_EVENT_TYPES.has(type)) {
      // An older `completed` (unpaid) may arrive after `async_payment_succeeded`; the current session is the truth.
      const session = await current(() => stripe.checkout.sessions.retrieve(id), id);
      if (!session) return 'object_missing';
      await payments.applyStripeSession(session);
      return 'applied';
    }

    log.debug({ type }, 'event type not used by the ledger');
    return 'ignored';
  };
}

export type EventApplier = ReturnType<typeof createEventApplier>;

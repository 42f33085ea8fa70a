/**
 * What each Stripe event means for the ledger. Stripe delivers at least once and in any order, so
 * every branch is idempotent and relies on the domain services to move state forward only; where
 * the snapshot in the event may already be outdated, the object is read again from Stripe first.
 */
import type Stripe from 'stripe';
import type { Logger } from 'pino';
import type { PaymentsService } from '../payments/service.js';
import { ledgerRowOf, type RefundService } from '../refunds/service.js';
import type { Store } from '../store/index.js';
import {
  logContextOptions,
  withoutCallSite,
  type StripeClient,
  type StripeLogContext,
} from '../stripe/client.js';
import { MAX_STRIPE_ID_LENGTH } from './verify.js';

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

/**
 * Final statuses that release a refund's amount for good (the ledger never leaves them): a snapshot in one is read
 * from Stripe before it is applied, so that only Stripe's own word releases money. A signed event need not be
 * Stripe's: `npm run webhook -- refund.failed --refund re_...` (the development trigger) embeds a real refund with
 * its status made up, and applied as it was, it marked a refund Stripe made `failed` in the ledger, its amount
 * released and announced as not refunded, for good. Stripe's own such events are rare (a refund fails or is
 * canceled once), so the extra read costs little.
 */
const RELEASING_REFUND_STATUSES: ReadonlySet<string> = new Set(['failed', 'canceled']);

/**
 * Whether a final snapshot can be applied as it is: what the ledger records of it (amount, currency, payment
 * intent) has the shape of Stripe's, and its status does not release its amount (RELEASING_REFUND_STATUSES).
 * Anything else did not come from Stripe as such (a hand-made event signed with the secret) and is read from
 * Stripe instead: recorded as it is, a payment intent id too long for the ledger's index failed on PostgreSQL every
 * time the event was retried, for good.
 */
function appliesAsIs(r: Stripe.Refund): boolean {
  const pi = r.payment_intent as unknown;
  const piId = typeof pi === 'object' && pi !== null ? (pi as { id?: unknown }).id : pi;
  return (
    FINAL_REFUND_STATUSES.has(r.status ?? '') &&
    !RELEASING_REFUND_STATUSES.has(r.status ?? '') &&
    Number.isSafeInteger(r.amount) &&
    r.amount >= 0 &&
    typeof r.currency === 'string' &&
    /^[a-z]{3}$/.test(r.currency) &&
    (piId === null || piId === undefined || (typeof piId === 'string' && piId.length <= MAX_STRIPE_ID_LENGTH))
  );
}

export interface EventApplierDeps {
  stripe: StripeClient;
  payments: PaymentsService;
  refunds: RefundService;
  logger: Logger;
  /**
   * The ledger, read to tell whether an intent's row was written while its status was being read from Stripe
   * (applyIntent), and to tell whether a refund snapshot is of a refund it knows (applyRefund). Unset, the read is
   * applied as it came, and so is a final refund snapshot that does not release its amount.
   */
  store?: Pick<Store, 'payments'> & Partial<Pick<Store, 'refunds'>>;
  /**
   * The mode of the service's Stripe key (true for sk_live_/rk_live_): an event of the other mode is not applied
   * (isOtherMode). Unset, every event is applied whatever its mode.
   */
  livemode?: boolean;
}

export type ApplyResult = 'applied' | 'ignored' | 'object_missing';

/** What an event's lines carry (see eventLogIds in service.ts). */
export interface EventLogIds {
  reqId?: string | undefined;
  eventId: string;
  type?: string;
  objectId?: string | undefined;
  payment_intent?: string | undefined;
  request_id?: string | undefined;
}

/** The ids of an event that its Stripe calls' lines carry. */
function stripeContextOf(ids: EventLogIds): StripeLogContext {
  return {
    reqId: ids.reqId,
    eventId: ids.eventId,
    payment_intent: ids.payment_intent,
    request_id: ids.request_id,
  };
}

function isMissingObject(err: unknown): boolean {
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  return e?.statusCode === 404 || e?.code === 'resource_missing';
}

/**
 * Whether the event is another account's: an endpoint set up to listen to events on connected accounts (Stripe
 * Connect) gets theirs, signed with its secret like any other, naming the account in `account`. The service never
 * acts for another account, so none of their objects is the ledger's; applied, a connected account's final refund
 * snapshot was recorded as a refund made in the dashboard on a payment intent the ledger did not know, and
 * announced as such.
 */
function isOtherAccounts(event: Stripe.Event): boolean {
  const account = (event as { account?: unknown }).account;
  return typeof account === 'string' && account !== '';
}

/**
 * Whether the event is of the other mode than the service's. Test and live mode have endpoints, secrets and objects
 * of their own, but a deployment listing both modes' endpoint secrets (one URL given to both endpoints, a secret
 * copied from the wrong one) verifies either mode's events; applied, a live final refund snapshot at a service with
 * a test key was recorded as a dashboard refund on a payment intent the ledger did not know, and announced.
 */
function isOtherMode(event: Stripe.Event, livemode: boolean | undefined): boolean {
  const mode = (event as { livemode?: unknown }).livemode;
  return livemode !== undefined && typeof mode === 'boolean' && mode !== livemode;
}

/**
 * How many times more an intent is read from Stripe when its row keeps being written while it is read (applyIntent).
 * Past that it is left as the other writes made it: the next event or GET /payment-intent puts it right.
 */
const INTENT_REREADS = 3;

export function createEventApplier(deps: EventApplierDeps) {
  const { stripe, payments, refunds } = deps;
  const log = deps.logger.child({ component: 'webhooks' });

  /** Reads the current object; null when Stripe does not know it (nothing to apply, and retrying will not help). */
  async function current<T>(read: () => Promise<T>, id: string, ids: EventLogIds): Promise<T | null> {
    try {
      return await read();
    } catch (err) {
      if (!isMissingObject(err)) throw err;
      log.warn({ ...ids, objectId: id }, 'event names an object Stripe does not know; nothing to apply');
      return null;
    }
  }

  /**
   * Whether a final snapshot (appliesAsIs) may be applied without asking Stripe: only for a refund the ledger knows
   * (its own, by Stripe id or the request_id it tagged it with, or one it learnt before), and only as the ledger has
   * it (its amount, and its currency once known). One it does not know would be recorded as a refund made outside
   * the service, its amount counted as refunded for good and announced: a signed event need not be Stripe's (`npm run
   * webhook -- refund.updated --payment-intent pi_...` makes one up, `succeeded`, with an id Stripe never gave), and
   * recorded so, the payment's real refund of what is left was refused. A known one's currency was written over with
   * the snapshot's (`--currency eur` on a usd refund), and shown and announced so. Anything else (a dashboard
   * refund's first event, say) is read from Stripe: only Stripe's word records money moved.
   */
  async function knownToLedger(snapshot: Stripe.Refund): Promise<boolean> {
    const refunds = deps.store?.refunds;
    if (!refunds) return true;
    const row = await ledgerRowOf({ refunds }, snapshot);
    return (
      row !== null &&
      row.amount === snapshot.amount &&
      (row.currency === null || row.currency === snapshot.currency)
    );
  }

  /** `listed`: the refund as Stripe's list answered it just now, not an event's snapshot (applied as it is). */
  async function applyRefund(
    snapshot: Stripe.Refund,
    ids: EventLogIds,
    listed = false,
  ): Promise<ApplyResult> {
    const refund =
      listed || (appliesAsIs(snapshot) && (await knownToLedger(snapshot)))
        ? snapshot
        : await current(
            () =>
              withoutCallSite(() =>
                stripe.refunds.retrieve(
                  snapshot.id,
                  {},
                  logContextOptions({
                    ...stripeContextOf(ids),
                    request_id: snapshot.metadata?.request_id ?? ids.request_id,
                  }),
                ),
              ),
            snapshot.id,
            ids,
          );
    if (!refund) return 'object_missing';
    await refunds.applyStripeRefund(refund);
    return 'applied';
  }

  /**
   * Stripe's current view of payment intent `id`, recorded. Two events of one intent (`requires_action`, then
   * `payment_failed` as the customer fails 3D Secure; `processing`, then `succeeded`) are applied at once, each
   * reading the intent from Stripe: the one whose read came first could write last, and leave the ledger at the
   * older status (the row's guard keeps only `succeeded` and `canceled`, which Stripe never leaves; an intent can
   * go back from `requires_action` or `processing` to `requires_payment_method`). So the row is read before Stripe
   * is asked, and the answer is written only if the row is still as read then (compare-and-set, one statement:
   * PaymentsRepo.upsertIfUnchanged). When another write came in between, its read may have been the newer, and the
   * row and the intent are read again (a read that began after that write), at most INTENT_REREADS times more.
   */
  async function applyIntent(id: string, ids: EventLogIds, context: Stripe.RequestOptions) {
    const read = () =>
      current(() => withoutCallSite(() => stripe.paymentIntents.retrieve(id, {}, context)), id, ids);
    const store = deps.store;
    if (!store) {
      const pi = await read();
      if (!pi) return 'object_missing';
      await payments.applyStripePaymentIntent(pi);
      return 'applied';
    }
    for (let again = 0; ; again++) {
      const seen = await store.payments.get(id);
      const pi = await read();
      if (!pi) return 'object_missing';
      if (await payments.applyStripePaymentIntent(pi, seen)) return 'applied';
      if (again >= INTENT_REREADS) {
        log.info(
          { ...ids, read: pi.status },
          'payment intent kept being written while it was read from Stripe; left as those writes made it',
        );
        return 'applied';
      }
      log.debug(
        { ...ids, read: pi.status, seen: seen?.status },
        'payment intent written while it was read from Stripe; reading it again',
      );
    }
  }

  /**
   * Applies one event. Safe to run any number of times, concurrently, in any order. `ids`: what the event's lines
   * carry (eventLogIds), put on its lines here and its Stripe calls' lines too.
   */
  return async function apply(
    event: Stripe.Event,
    ids: EventLogIds = { eventId: event.id },
  ): Promise<ApplyResult> {
    const type = event.type as string;
    const object = event.data.object as { id?: unknown };
    if (typeof object.id !== 'string') return 'ignored';
    if (isOtherAccounts(event)) {
      log.warn(
        { ...ids, account: event.account },
        "event of another Stripe account (an endpoint listening to connected accounts); not this ledger's",
      );
      return 'ignored';
    }
    if (isOtherMode(event, deps.livemode)) {
      log.warn(
        { ...ids, livemode: event.livemode },
        "event of the other Stripe mode (a secret of the other mode's endpoint is listed); not this ledger's",
      );
      return 'ignored';
    }
    const id = object.id;
    const context = logContextOptions(stripeContextOf(ids));

    if (REFUND_EVENT_TYPES.has(type)) return applyRefund(event.data.object as Stripe.Refund, ids);

    if (type === CHARGE_REFUNDED_EVENT_TYPE) {
      // The charge in the event lists no refunds; read them all, which also learns refunds made elsewhere.
      const listed = await current(
        async () => {
          const all: Stripe.Refund[] = [];
          for await (const refund of stripe.refunds.list({ charge: id, limit: 100 }, context))
            all.push(refund);
          return all;
        },
        id,
        ids,
      );
      if (!listed) return 'object_missing';
      for (const refund of listed) await applyRefund(refund, ids, true);
      return listed.length > 0 ? 'applied' : 'ignored';
    }

    if (PAYMENT_INTENT_EVENT_TYPES.has(type)) return applyIntent(id, ids, context);

    if (CHECKOUT_SESSION_EVENT_TYPES.has(type)) {
      // An older `completed` (unpaid) may arrive after `async_payment_succeeded`; the current session is the truth.
      const session = await current(
        () => withoutCallSite(() => stripe.checkout.sessions.retrieve(id, {}, context)),
        id,
        ids,
      );
      if (!session) return 'object_missing';
      await payments.applyStripeSession(session);
      return 'applied';
    }

    log.debug({ ...ids, type }, 'event type not used by the ledger');
    return 'ignored';
  };
}

export type EventApplier = ReturnType<typeof createEventApplier>;

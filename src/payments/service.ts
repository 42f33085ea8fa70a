/**
 * Checkout sessions and payment intents: Stripe does the work, the ledger remembers who created what,
 * and callers only ever see their own objects.
 */
import { hash, randomUUID } from 'node:crypto';
import type Stripe from 'stripe';
import type { Logger } from 'pino';
import { idempotencyScope, type Caller } from '../http/operations.js';
import { ProblemError } from '../http/problem.js';
import {
  fitsMinorUnitStep,
  formatAmount,
  isSupportedCurrency,
  maxAmount,
  minorUnitStep,
} from '../money/currencies.js';
import { StoreUnavailableError, type Payment, type Repos, type Store } from '../store/index.js';
import {
  logContextOptions,
  withoutCallSite,
  type StripeClient,
  type StripeLogContext,
} from '../stripe/client.js';
import { classifyStripeError, toCreateProblem, toProblem } from '../stripe/errors.js';
import { checkoutAsTaken, metadataWithEmptyValues, paymentIntentAsTaken } from './as-taken.js';

export interface LineItemInput {
  price_data: { currency: string; product_data: { name: string; description?: string }; unit_amount: number };
  quantity: number;
}

export interface CheckoutInput {
  line_items: LineItemInput[];
  success_url: string;
  cancel_url: string;
  customer_email?: string;
  metadata?: Record<string, string>;
}

export interface PaymentIntentInput {
  amount: number;
  currency: string;
  metadata?: Record<string, string>;
  description?: string;
  receipt_email?: string;
  payment_method?: string;
  confirm?: boolean;
}

export interface PaymentsDeps {
  store: Store;
  stripe: StripeClient;
  logger: Logger;
  /**
   * API keys are on, so every object has an owner to find (with them off everyone is the same anonymous
   * caller and no lookup is worth a Stripe call).
   */
  ownersMatter?: boolean;
  /**
   * UNOWNED_PAYMENTS_OWNER (API keys on only): the owner a payment intent or checkout session is taken as when it
   * names no owner at Stripe and the ledger knows none for it (the Python service's payments, the dashboard's, a
   * Payment Link's). Null or unset: such a payment is nobody's, and every owner gets 404 for it.
   */
  unownedOwner?: string | null;
}

/** Without API keys configured everyone is the same anonymous caller, as in the original service. */
export function isOpenMode(caller: Caller): boolean {
  return caller.keyId === null;
}

/** `line_items.0.price_data.currency` → `/body/line_items/0/price_data/currency`, as the validator names fields. */
const bodyPath = (param: string) => `/body/${param.replace(/\./g, '/')}`;

export function requireSupportedCurrency(currency: string, param: string): void {
  if (!isSupportedCurrency(currency)) {
    throw new ProblemError(400, `Currency ${currency} is not supported by Stripe.`, {
      code: 'currency_not_supported',
      param,
      errors: [{ path: bodyPath(param), message: 'is not a currency Stripe supports' }],
    });
  }
}

/** `{CHECKOUT_SESSION_ID}` percent-encoded, as a URL builder (new URL, URLSearchParams) writes it. */
const ENCODED_SESSION_ID_PLACEHOLDER = /%7BCHECKOUT_SESSION_ID%7D/i;

/**
 * Stripe replaces `{CHECKOUT_SESSION_ID}` in `success_url` only as written so; percent-encoded (`%7B...%7D`, what a
 * client gets by building the URL with URLSearchParams) Stripe takes it and sends the customer back with the
 * placeholder itself instead of the session id, and the shop cannot tell which payment came back. Refused here.
 */
export function requireLiteralSessionPlaceholder(successUrl: string): void {
  if (!ENCODED_SESSION_ID_PLACEHOLDER.test(successUrl)) return;
  throw new ProblemError(
    400,
    'success_url holds {CHECKOUT_SESSION_ID} percent-encoded; Stripe replaces the placeholder only when it is ' +
      'written with literal braces, so the customer would come back without the session id.',
    {
      code: 'placeholder_encoded',
      param: 'success_url',
      errors: [
        { path: '/body/success_url', message: 'must write {CHECKOUT_SESSION_ID} with literal braces' },
      ],
    },
  );
}

/**
 * Stripe takes amounts of up to eight digits, twelve in idr (docs.stripe.com/currencies#minimum-and-maximum-charge-
 * amounts). The contract allows twelve, so that idr payments over 999,999.99 IDR (about 60 USD) can be made;
 * more than eight in another currency is refused here, before Stripe is called.
 */
export function requireAmountWithinMax(amount: number, currency: string, param: string): void {
  const maximum = maxAmount(currency);
  if (amount <= maximum) return;
  throw new ProblemError(
    400,
    `Amount ${amount} is more than Stripe takes in ${currency}: at most ${maximum} ` +
      `(${formatAmount(maximum, currency)} ${currency.toUpperCase()}).`,
    {
      code: 'amount_too_large',
      param,
      errors: [{ path: bodyPath(param), message: `must be <= ${maximum} in ${currency}` }],
    },
  );
}

/**
 * Stripe takes a three-decimal currency's amounts (5120 kwd is 5.120 KWD) only with a last digit of 0
 * (docs.stripe.com/currencies#three-decimal), and isk and ugx amounts (500 isk is 5 ISK) only in whole units,
 * ending in 00 (docs.stripe.com/currencies#special-cases): refused here, before any money is reserved or Stripe
 * is called.
 */
export function requireAmountFitsCurrency(amount: number, currency: string, param: string): void {
  if (fitsMinorUnitStep(amount, currency)) return;
  const step = minorUnitStep(currency);
  const down = amount - (amount % step);
  const why =
    step === 10
      ? `${currency} has three decimals and Stripe takes its amounts rounded to the nearest ten`
      : `Stripe takes ${currency} amounts with two decimals that are always 00 (it cannot charge fractions of ` +
        `${currency.toUpperCase()}: 500 is 5 ${currency.toUpperCase()})`;
  throw new ProblemError(
    400,
    `Amount ${amount} is not a multiple of ${step}: ${why} (for example ${down} or ${down + step}).`,
    {
      code: 'amount_not_rounded',
      param,
      errors: [
        {
          path: bodyPath(param),
          message:
            step === 10
              ? 'must be a multiple of 10 in a three-decimal currency'
              : `must be a multiple of 100 in ${currency} (whole units)`,
        },
      ],
    },
  );
}

/** Stripe's limit on a metadata value, in characters. */
export const METADATA_VALUE_MAX = 500;

/**
 * Stripe does not say how it counts a metadata value's 500 characters; the sandbox counts UTF-16 units (an emoji is
 * two), the contract's `maxLength` code points (an emoji is one). A value the contract takes could thus be refused by
 * Stripe only after a refund was reserved (POST /refund-async would answer 202 for a refund its worker can only
 * fail), so the stricter count is applied here, before any money is reserved or Stripe is called.
 */
export function requireMetadataFits(metadata: Record<string, string> | undefined): void {
  const long = Object.entries(metadata ?? {}).filter(([, v]) => v.length > METADATA_VALUE_MAX);
  if (long.length === 0) return;
  throw new ProblemError(
    400,
    `Metadata values can have up to ${METADATA_VALUE_MAX} characters, counting a character outside the Basic ` +
      `Multilingual Plane (an emoji) as two; ${long.map(([k, v]) => `${k} has ${v.length}`).join(', ')}.`,
    {
      code: 'metadata_value_too_long',
      param: 'metadata',
      errors: long.map(([k]) => ({
        path: `/body/metadata/${k}`,
        message: `must NOT have more than ${METADATA_VALUE_MAX} UTF-16 code units (an emoji counts 2)`,
      })),
    },
  );
}

/**
 * The metadata key under which a payment intent or checkout session made with API keys on names its owner at Stripe
 * (the owner of the API key that created it: a name such as `shop`, which outcome messages carry too, never a key);
 * a session passes it on to the intent it makes when paid (`payment_intent_data.metadata`). The ledger names the
 * owner as well, but a payment it lacks has no row: a confirmed intent whose ledger write failed (the database went
 * away during the Stripe call), a session whose row's write failed after Stripe made it, or either one after the
 * database was restored from a backup older than it. Its owner is then learnt from this key (ownerOfIntent,
 * applyStripeSession), so that the owner can still read and refund the payment. The service's own: refused in a
 * client's metadata and left out of the metadata it answers and keeps.
 */
export const OWNER_METADATA_KEY = 'payment_service_owner';

/** Stripe's limit on the number of metadata keys. */
export const METADATA_KEYS_MAX = 50;

/** A client's metadata naming the key the service keeps for itself (OWNER_METADATA_KEY) is refused. */
export function requireNoReservedMetadata(metadata: Record<string, string> | undefined): void {
  if (metadata === undefined || !Object.hasOwn(metadata, OWNER_METADATA_KEY)) return;
  throw new ProblemError(
    400,
    `The metadata key ${OWNER_METADATA_KEY} is the service's own: it names the owner of a payment; choose another.`,
    {
      code: 'metadata_key_reserved',
      param: 'metadata',
      errors: [
        { path: `/body/metadata/${OWNER_METADATA_KEY}`, message: "is reserved for the service's own use" },
      ],
    },
  );
}

/** The metadata as the client gave it: without the key the service added (OWNER_METADATA_KEY). */
export function clientMetadata(metadata: Stripe.Metadata | null | undefined): Record<string, string> {
  const { [OWNER_METADATA_KEY]: _owner, ...rest } = (metadata ?? {}) as Record<string, string>;
  return rest;
}

/**
 * The metadata a payment intent or checkout session (`what`) is made with: the client's and, with API keys on
 * (`owner`), the owner's name (OWNER_METADATA_KEY), which takes one of Stripe's 50 keys. A client's 50 are refused
 * here (Stripe would refuse the 51 with a message naming a key the client never sent).
 */
function withOwnerMetadata(
  metadata: Record<string, string> | undefined,
  owner: string | null,
  what: 'payment intent' | 'checkout session',
): Record<string, string> | undefined {
  if (owner === null) return metadata;
  if (Object.keys(metadata ?? {}).length >= METADATA_KEYS_MAX) {
    throw new ProblemError(
      400,
      `A ${what}'s metadata can have up to ${METADATA_KEYS_MAX - 1} keys: Stripe takes ` +
        `${METADATA_KEYS_MAX}, and the service uses one (${OWNER_METADATA_KEY}) to name the payment's owner.`,
      {
        code: 'metadata_too_many_keys',
        param: 'metadata',
        errors: [
          { path: '/body/metadata', message: `must NOT have more than ${METADATA_KEYS_MAX - 1} properties` },
        ],
      },
    );
  }
  return { ...metadata, [OWNER_METADATA_KEY]: owner };
}

/**
 * The client's metadata as sent, keys of empty value included, with the owner's key as withOwnerMetadata adds it:
 * what versions before 92d2648 sent Stripe. Null when that is the metadata as taken (no key of empty value), or
 * when with the owner's key it is over Stripe's 50 keys (those versions refused such a body before asking Stripe).
 */
function metadataAsSent(
  given: Record<string, string> | undefined,
  owner: string | null,
): Record<string, string> | null {
  const sent = metadataWithEmptyValues(given);
  if (sent === undefined) return null;
  if (owner === null) return sent;
  if (Object.keys(sent).length >= METADATA_KEYS_MAX) return null;
  return { ...sent, [OWNER_METADATA_KEY]: owner };
}

/**
 * A create call (`create`, under one Stripe idempotency key) with the metadata as taken (`asTaken`) and, when Stripe
 * answers that its key was used with other parameters (idempotency_error) and the client's metadata as sent differs
 * (`asSent`, metadataAsSent), once more with that. Both make the same object (on create Stripe takes an empty value
 * as a key not set), but Stripe compares parameters as sent, and versions before 92d2648 sent the keys of empty
 * value: a request such a version made (its answer lost in the update), retried identically here under the same
 * Idempotency-Key, gets what Stripe made, instead of 422 idempotency_key_reused and then a second payment under a
 * new key. As taken first, so that a retry spelt without those keys after a lost answer is the same request at
 * Stripe too (the service compares bodies as taken). Another body under the key is refused both times (422).
 */
async function createWithMetadata<T>(
  create: (metadata: Record<string, string> | undefined) => Promise<T>,
  asTaken: Record<string, string> | undefined,
  asSent: Record<string, string> | null,
): Promise<T> {
  try {
    return await create(asTaken);
  } catch (err) {
    if (asSent === null || classifyStripeError(err) !== 'idempotency') throw err;
    return create(asSent);
  }
}

/**
 * What POST /payment-intent asks Stripe to create, with `sent` as its metadata. A function of the module rather than
 * a closure made for each request: the bundle names every such closure (esbuild's keepNames), a defineProperty each.
 */
function intentCreateParams(
  input: PaymentIntentInput,
  sent: Record<string, string> | undefined,
): Stripe.PaymentIntentCreateParams {
  return {
    amount: input.amount,
    currency: input.currency,
    ...(sent ? { metadata: sent } : {}),
    ...(input.description ? { description: input.description } : {}),
    ...(input.receipt_email ? { receipt_email: input.receipt_email } : {}),
    // Card only, so that confirming needs no return_url. The pinned API version (2026-10-28.endive) refuses
    // payment_method_types (400 payment_method_types_no_longer_supported, since 2026-09-30.endive);
    // allowed_payment_method_types takes its place.
    ...(input.payment_method
      ? {
          payment_method: input.payment_method,
          allowed_payment_method_types: ['card'],
          confirm: input.confirm ?? false,
        }
      : { automatic_payment_methods: { enabled: true } }),
  };
}

/** The owner an intent's or session's metadata names (OWNER_METADATA_KEY), '' when none. */
function ownerNamedBy(object: { metadata: Stripe.Metadata | null } | null | undefined): string {
  const named = object?.metadata?.[OWNER_METADATA_KEY];
  return typeof named === 'string' ? named : '';
}

const notFound = (what: string) => new ProblemError(404, `No such ${what}.`, { code: 'resource_missing' });

/** Statuses Stripe never leaves. */
const FINAL_INTENT_STATUS_LIST = ['succeeded', 'canceled'] as const;
const FINAL_INTENT_STATUSES: ReadonlySet<string> = new Set(FINAL_INTENT_STATUS_LIST);
const FINAL_SESSION_STATUS_LIST = ['complete', 'expired'] as const;
const FINAL_SESSION_STATUSES: ReadonlySet<string> = new Set(FINAL_SESSION_STATUS_LIST);

/**
 * The status of the intent a session names, as far as the session tells. Stripe names the intent from the first Pay
 * on, declined or not (not only once paid): an unpaid open session's intent awaits another card, and an expired
 * session's is canceled (Stripe cancels it as the session expires, the only way such an intent is canceled).
 */
function paymentIntentStatusOfSession(s: Stripe.Checkout.Session): string {
  if (s.payment_status === 'paid') return 'succeeded';
  return s.status === 'expired' ? 'canceled' : 'requires_payment_method';
}

/** Statuses of an intent whose confirmation may have moved the customer's money. */
const MONEY_MOVED_STATUSES: ReadonlySet<string> = new Set(['processing', 'requires_capture', 'succeeded']);

/**
 * The ledger could not record an intent Stripe made. Its 503 store_unavailable asks for a retry, which is safe with
 * an Idempotency-Key (Stripe's key is derived from it: the retry gets this intent and records it) and for an intent
 * nobody can pay yet (its client secret was never answered). An intent confirmed under a fresh key has charged the
 * customer, and that retry (retrying HTTP clients follow Retry-After by themselves) makes and charges another one:
 * that answer says so and carries no Retry-After.
 */
function unrecordedIntentProblem(err: unknown, pi: Stripe.PaymentIntent, keyed: boolean): unknown {
  if (keyed || !MONEY_MOVED_STATUSES.has(pi.status) || !(err instanceof StoreUnavailableError)) return err;
  return new ProblemError(
    503,
    `The payment provider made payment intent ${pi.id} (${pi.status}), but the service could not reach its ` +
      'database to record it. The request had no Idempotency-Key, so a retry would make and charge a second one: ' +
      `check first (GET /payment-intent/${pi.id} answers for it once the database is back), and send an ` +
      'Idempotency-Key to make retries safe.',
    { code: err.code, cause: err },
  );
}

/**
 * Stripe's idempotency key for a create call: derived from the caller's Idempotency-Key when there is one,
 * so a retry after a lost answer (the service answered 5xx and forgot the key) gets the object Stripe
 * already made instead of a second one; otherwise a fresh key for this call alone.
 */
function stripeKey(kind: string, caller: Caller, idempotencyKey: string | undefined): string {
  return idempotencyKey === undefined
    ? `${kind}:${randomUUID()}`
    : `${kind}:${hash('sha256', `${idempotencyScope(caller)}\n${idempotencyKey}`, 'hex')}`;
}

export type PaymentsService = ReturnType<typeof createPaymentsService>;

export function createPaymentsService({
  store,
  stripe,
  logger,
  ownersMatter = false,
  unownedOwner = null,
}: PaymentsDeps) {
  const log = logger.child({ component: 'payments' });
  /** The owner of a payment naming none ('': nobody); API keys off, every caller sees every payment anyway. */
  const unowned = ownersMatter ? (unownedOwner ?? '') : '';
  if (unowned) {
    log.info(
      { owner: unowned },
      'payments naming no owner at Stripe are taken as this owner (UNOWNED_PAYMENTS_OWNER)',
    );
  } else if (unownedOwner) {
    log.warn(
      'UNOWNED_PAYMENTS_OWNER is set but API keys are off: every caller sees every payment, so it changes nothing',
    );
  }

  /**
   * The owner of `object` (an intent or session Stripe has; null or undefined: none) as its metadata names it
   * (OWNER_METADATA_KEY), else UNOWNED_PAYMENTS_OWNER's ('' when unset).
   */
  function ownerNamedOrUnowned(object: { metadata: Stripe.Metadata | null } | null | undefined): string {
    return ownerNamedBy(object) || (object ? unowned : '');
  }

  /**
   * The owner of checkout session `session` as Stripe's metadata tells, given Stripe's view of its payment intent
   * (`intent`; null or undefined: none, or not asked for): the owner the session names, else UNOWNED_PAYMENTS_OWNER's
   * only when the intent names no owner either. An intent naming one (the service never makes such a session; the
   * Stripe API can) leaves the session with none, as without the setting, and the intent to the owner it names.
   */
  function ownerOfSessionNamed(
    session: Stripe.Checkout.Session,
    intent: { metadata: Stripe.Metadata | null } | null | undefined,
  ): string {
    return ownerNamedBy(intent) ? ownerNamedBy(session) : ownerNamedOrUnowned(session);
  }

  /**
   * ownerOfSessionNamed for a session as Stripe answered it, its payment intent an id or expanded: the intent is
   * retrieved only when its metadata can change the answer (UNOWNED_PAYMENTS_OWNER set, the session naming no
   * owner, and an intent named by id).
   */
  async function ownerOfSessionAtStripe(
    session: Stripe.Checkout.Session,
    context: StripeLogContext = {},
  ): Promise<string> {
    const pi = session.payment_intent;
    if (typeof pi !== 'string') return ownerOfSessionNamed(session, pi);
    if (!unowned || ownerNamedBy(session)) return ownerOfSessionNamed(session, null);
    return ownerOfSessionNamed(session, await retrieveIntentOrNull(pi, { ...context, payment_intent: pi }));
  }

  /** Finds the ledger row that makes `id` visible to the caller: its own row, or the session that led to it. */
  async function ownedRow(
    caller: Caller,
    id: string,
    repos: Pick<Repos, 'payments'> = store,
  ): Promise<Payment | null> {
    const direct = await repos.payments.getForOwner(id, caller.owner);
    return direct ?? ownedThroughSession(caller, id, repos);
  }

  /** The checkout session of the caller's that led to payment intent `id`, when the intent has no row of its own. */
  async function ownedThroughSession(
    caller: Caller,
    id: string,
    repos: Pick<Repos, 'payments'> = store,
  ): Promise<Payment | null> {
    if (!id.startsWith('pi_')) return null;
    const via = await repos.payments.findByPaymentIntent(id);
    return via && via.owner === caller.owner ? via : null;
  }

  /**
   * ownedRow, or (API keys on) the row learnt from Stripe when the ledger cannot tell yet: a payment made on the
   * hosted checkout page whose events have not been applied has only its session in the ledger, as it was
   * made: unpaid and naming no intent (Stripe makes and names the intent at the first Pay, declined or not,
   * and no event of the session's says so before it completes or expires), and the caller may know the
   * intent's id by then (its own Stripe webhooks, or the `stripe.events` exchange, which publishes an event
   * before it is applied). The intent is then learnt as its events would learn it (ownerOfIntent): from the
   * checkout session of ours that made it, or from the owner the intent names at Stripe (one we made whose ledger
   * write failed), recorded on the way. Null when the intent is not the caller's. Not for use inside a transaction
   * (it may ask Stripe).
   */
  async function ownedRowOrLearnt(caller: Caller, id: string, reqId?: string): Promise<Payment | null> {
    const row = await ownedRow(caller, id);
    if (row || isOpenMode(caller) || !ownersMatter || !id.startsWith('pi_')) return row;
    let owner: string;
    try {
      // Stripe is asked even when the ledger names another owner: answered from the ledger alone, another owner's
      // intent got its 404 without the Stripe round trip an unknown id waits for (and a 404 where an unknown id
      // gets 503 while Stripe fails), which told the caller that the intent exists.
      owner = await ownerOfIntent(id, { reqId }, { askStripe: true });
    } catch (err) {
      throw toProblem(err, 'payment_intent');
    }
    return owner === caller.owner ? ownedRow(caller, id) : null;
  }

  async function recordSession(
    owner: string,
    session: Stripe.Checkout.Session,
    metadata?: Record<string, string>,
  ) {
    const piId =
      typeof session.payment_intent === 'string'
        ? session.payment_intent
        : (session.payment_intent?.id ?? null);
    const status = session.status ?? 'open';
    // Locked and written together, so a slower, older read of the same session cannot undo a newer one.
    return store.transaction(async (tx) => {
      const known = await tx.payments.lockForUpdate(session.id);
      const stale = known !== null && FINAL_SESSION_STATUSES.has(known.status) && known.status !== status;
      // Guarded as well: a session the ledger has no row for yet has none to lock, and on PostgreSQL another
      // transaction may insert it (complete, from a newer read) before this upsert, which then found an `open`
      // from an older read written over it.
      const row = stale
        ? known
        : await tx.payments.upsert(
            {
              id: session.id,
              kind: 'checkout_session',
              owner,
              paymentIntentId: piId,
              amount: session.amount_total ?? 0,
              currency: session.currency ?? '',
              status,
              metadata: metadata ?? clientMetadata(session.metadata),
              // No customer e-mail: nothing here reads it (GET /checkout-session asks Stripe), so the ledger keeps
              // no customer's personal data.
            },
            { finalStatuses: FINAL_SESSION_STATUS_LIST },
          );
      if (piId) {
        const derived = paymentIntentStatusOfSession(session);
        const intent = {
          id: piId,
          kind: 'payment_intent' as const,
          owner: row.owner,
          amount: session.amount_total ?? 0,
          currency: session.currency ?? '',
          metadata: row.metadata,
        };
        let knownIntent = await tx.payments.lockForUpdate(piId);
        if (!knownIntent) {
          // No row to lock. On PostgreSQL the intent's own event may insert one (a newer status the session cannot
          // tell: requires_action, processing) before this write, so the status told by the session only inserts
          // a row that does not exist (the compare-and-set write with no row seen: a row found is left as it is).
          const inserted = await tx.payments.upsertIfUnchanged({ ...intent, status: derived }, null, {
            finalStatuses: FINAL_INTENT_STATUS_LIST,
          });
          if (inserted) {
            await giveRefundsOwnerless(tx, null, inserted);
            return row;
          }
          // The intent's row was inserted meanwhile (committed now, as the insert waited for it): lock it and
          // proceed as if it had been found.
          knownIntent = await tx.payments.lockForUpdate(piId);
        }
        // An open unpaid session says little about its intent: the intent's own status (from its events) wins,
        // unless the session tells a final one (paid: succeeded; expired: canceled).
        const intentStatus =
          knownIntent &&
          (FINAL_INTENT_STATUSES.has(knownIntent.status) || !FINAL_INTENT_STATUSES.has(derived))
            ? knownIntent.status
            : derived;
        const written = await tx.payments.upsert(
          { ...intent, status: intentStatus },
          { finalStatuses: FINAL_INTENT_STATUS_LIST },
        );
        await giveRefundsOwnerless(tx, knownIntent, written);
      }
      return row;
    });
  }

  /**
   * Inside the transaction that wrote intent row `written` over `before` (null: none): when the row has been given an
   * owner (it had none: UNOWNED_PAYMENTS_OWNER's, or a learnt one), the intent's refunds recorded with no owner (a
   * dashboard refund whose event came first) are given that owner too, so that its refunds and their status checks
   * (`stripe:<refund id>`) find them as the owner's own, as they find the payment.
   */
  async function giveRefundsOwnerless(
    tx: Pick<Repos, 'refunds'>,
    before: Pick<Payment, 'owner'> | null,
    written: Pick<Payment, 'id' | 'owner'>,
  ): Promise<void> {
    if (!written.owner || before?.owner) return;
    const given = await tx.refunds.giveOwnerless(written.id, written.owner);
    if (given > 0)
      log.info({ paymentIntentId: written.id, refunds: given }, "gave a payment's refunds its owner");
  }

  /** The ledger's row of intent `pi`, owned by `owner`. */
  function intentRow(owner: string, pi: Stripe.PaymentIntent) {
    return {
      id: pi.id,
      kind: 'payment_intent' as const,
      owner,
      amount: pi.amount,
      currency: pi.currency,
      status: pi.status,
      metadata: clientMetadata(pi.metadata),
    };
  }

  /**
   * Records `pi` as read from Stripe by a request (GET /payment-intent/{id}, a refund's resolveForRefund) that
   * looked at the intent's row (`seen`, null: none) before it asked. A final status is written as recordIntent
   * writes it (Stripe never leaves it, so no write can be newer). Any other is written only if the row is still as
   * seen (compare-and-set, one statement): an event's applier may have written a newer read meanwhile (the
   * customer tried another card after failing 3D Secure), and this older one written over it left the ledger
   * behind Stripe with no event to come. Null when it was not written; the other write stands (an event's applier
   * reads the intent again when the row changed under its own read).
   */
  async function recordIntentRead(
    owner: string,
    pi: Stripe.PaymentIntent,
    seen: Pick<Payment, 'status' | 'updatedAt'> | null,
  ): Promise<Payment | null> {
    if (FINAL_INTENT_STATUSES.has(pi.status)) return recordIntent(owner, pi);
    return store.payments.upsertIfUnchanged(intentRow(owner, pi), seen, {
      finalStatuses: FINAL_INTENT_STATUS_LIST,
    });
  }

  async function recordIntent(owner: string, pi: Stripe.PaymentIntent): Promise<Payment> {
    // Stripe never moves an intent out of succeeded or canceled: a different status is an older view,
    // and the one guarded statement keeps the final row (no transaction or row lock needed).
    return store.payments.upsert(intentRow(owner, pi), { finalStatuses: FINAL_INTENT_STATUS_LIST });
  }

  /**
   * The owner of payment intent `id`, '' when it has none: the one the ledger knows, else (API keys on) the owner
   * of the checkout session of ours that made it, asked of Stripe and recorded (session and intent) on the way:
   * the ledger's owner of the session, else the owner the session names at Stripe (OWNER_METADATA_KEY: a session
   * whose row the ledger lacks, its write failed or the database was restored from an older backup); else the owner
   * the intent itself names at Stripe (an intent we made whose ledger write failed), recorded on the way. Stripe
   * names the intent on a session from its first confirmation attempt (the first Pay, even a declined one,
   * which sends the intent's events and none of the session's), and sends the intent's own events (and its
   * refunds') in no set order with the session's, so an event may come when the ledger knows only the session.
   * An intent naming no owner, from a session naming none (made in the dashboard, a Payment Link, the Python service,
   * or before sessions named their owner), has none, unless UNOWNED_PAYMENTS_OWNER names one (`unownedOwner`): it
   * is then that owner's, recorded so (a ledger row with owner '' is rewritten to name it, by the upsert's rule
   * that fills in a row's missing owner), so that every later check of the ledger finds it as the owner's own.
   */
  /** `context`: what the Stripe calls' lines carry besides the payment intent (the request's or event's ids). */
  /**
   * `askStripe`: ask Stripe even when the ledger knows the owner (ownedRowOrLearnt), so that another owner's intent
   * takes the same calls as an unknown id. `intent`: Stripe's view of the intent when the caller has it (a webhook's),
   * so that it need not be retrieved.
   */
  async function ownerOfIntent(
    id: string,
    context: StripeLogContext = {},
    opts: { askStripe?: boolean; intent?: Stripe.PaymentIntent } = {},
  ): Promise<string> {
    const known = await store.payments.findByPaymentIntent(id);
    if (!ownersMatter || (known?.owner && !opts.askStripe)) return known?.owner ?? '';
    const logContext = { ...context, payment_intent: id };
    const [sessions, intent] = await Promise.all([
      withoutCallSite(() =>
        stripe.checkout.sessions.list({ payment_intent: id, limit: 1 }, logContextOptions(logContext)),
      ),
      opts.intent ?? retrieveIntentOrNull(id, logContext),
    ]);
    if (known?.owner) return known.owner;
    const session = sessions.data[0];
    const ours = session ? await store.payments.get(session.id) : null;
    // UNOWNED_PAYMENTS_OWNER's only when the intent names no owner either (it never names another than its session's
    // when the service made both; one that does is left to the intent's own branch below, as without the setting).
    const sessionOwner = ours?.owner || (session ? ownerOfSessionNamed(session, intent) : '');
    // Nothing to learn from a session the ledger holds, already naming this intent, that names no owner (made in the
    // dashboard, a Payment Link): recorded again, it rewrote the intent's row on every read, under an event's
    // applier's compare-and-set, which then read the intent again and again and never wrote what it read. An
    // intent that names an owner is that owner's, learnt below (its row then names it, so this is asked once).
    if (ours && !sessionOwner && ours.paymentIntentId === id && !ownerNamedBy(intent)) return '';
    if (session && (ours || sessionOwner)) {
      const recorded = await recordSession(sessionOwner, session);
      if (!ours?.owner && recorded.owner) {
        log.info(
          { ...context, paymentIntentId: id, sessionId: session.id },
          ownerNamedBy(session)
            ? 'recorded a checkout session the ledger lacked, for its owner'
            : 'recorded a checkout session naming no owner, for UNOWNED_PAYMENTS_OWNER',
        );
      }
      // A session of nobody's whose intent names an owner: the intent is that owner's, learnt below.
      if (recorded.owner || !ownerNamedBy(intent)) return recorded.owner;
    }
    const named = ownerNamedOrUnowned(intent);
    if (named && intent) {
      // The intent's row had no owner, or there was none: its refunds recorded with no owner follow it.
      const recorded = await store.transaction(async (tx) => {
        const written = await tx.payments.upsert(intentRow(named, intent), {
          finalStatuses: FINAL_INTENT_STATUS_LIST,
        });
        await giveRefundsOwnerless(tx, null, written);
        return written;
      });
      log.info(
        { ...context, paymentIntentId: id },
        ownerNamedBy(intent)
          ? 'recorded a payment intent the ledger lacked, for its owner'
          : 'recorded a payment intent naming no owner, for UNOWNED_PAYMENTS_OWNER',
      );
      return recorded.owner;
    }
    return named;
  }

  /** Stripe's view of intent `id`, null when Stripe has none. */
  async function retrieveIntentOrNull(
    id: string,
    context: StripeLogContext,
  ): Promise<Stripe.PaymentIntent | null> {
    try {
      return await withoutCallSite(() => stripe.paymentIntents.retrieve(id, {}, logContextOptions(context)));
    } catch (err) {
      if (classifyStripeError(err) === 'not_found') return null;
      throw err;
    }
  }

  return {
    /** `idempotencyKey`: the caller's Idempotency-Key, if any (see stripeKey). */
    /** `reqId`: the HTTP request's id, for the log line (the request's other lines carry it as reqId). */
    async createCheckoutSession(
      caller: Caller,
      given: CheckoutInput,
      idempotencyKey?: string,
      reqId?: string,
    ) {
      // Currencies in lower case (as an Idempotency-Key compares the body: as-taken.ts).
      const input: CheckoutInput = checkoutAsTaken(given);
      const currencies = new Set(input.line_items.map((li) => li.price_data.currency));
      if (currencies.size > 1) {
        throw new ProblemError(400, 'All line items of a checkout session must use the same currency.', {
          code: 'currency_mismatch',
          param: 'line_items',
        });
      }
      const currency = input.line_items[0]!.price_data.currency;
      requireSupportedCurrency(currency, 'line_items.0.price_data.currency');
      requireLiteralSessionPlaceholder(input.success_url);
      requireMetadataFits(input.metadata);
      // Passed on to the session's payment intent, where the key would name an owner. Refused as sent, even with an
      // empty value (which is taken as not given).
      requireNoReservedMetadata(given.metadata);
      // With API keys on, the session and the intent it makes name their owner at Stripe (OWNER_METADATA_KEY), so
      // that a paid session the ledger lacks is still its owner's (ownerOfIntent). Stripe's idempotency key is
      // derived as before, on purpose: a request a version without the owner sent (its answer lost), retried here
      // with the same Idempotency-Key, is then refused by Stripe as other parameters under the same key (422
      // idempotency_key_reused) instead of making a second session for one order.
      const owner = ownersMatter && !isOpenMode(caller) ? caller.owner : null;
      const metadata = withOwnerMetadata(input.metadata, owner, 'checkout session');
      // Each unit amount in the currency's step (10 for kwd, 100 for isk), so the total is too.
      input.line_items.forEach((li, i) => {
        const param = `line_items.${i}.price_data.unit_amount`;
        requireAmountWithinMax(li.price_data.unit_amount, currency, param);
        requireAmountFitsCurrency(li.price_data.unit_amount, currency, param);
      });
      const options = {
        idempotencyKey: stripeKey('checkout', caller, idempotencyKey),
        ...logContextOptions({ reqId }),
      };
      let session: Stripe.Checkout.Session;
      try {
        session = await createWithMetadata(
          (sent) =>
            withoutCallSite(() =>
              stripe.checkout.sessions.create(
                {
                  mode: 'payment',
                  line_items: input.line_items.map((li) => ({
                    quantity: li.quantity,
                    price_data: {
                      currency: li.price_data.currency,
                      unit_amount: li.price_data.unit_amount,
                      product_data: {
                        name: li.price_data.product_data.name,
                        ...(li.price_data.product_data.description
                          ? { description: li.price_data.product_data.description }
                          : {}),
                      },
                    },
                  })),
                  success_url: input.success_url,
                  cancel_url: input.cancel_url,
                  ...(input.customer_email ? { customer_email: input.customer_email } : {}),
                  ...(sent ? { metadata: sent, payment_intent_data: { metadata: sent } } : {}),
                },
                options,
              ),
            ),
          metadata,
          metadataAsSent(given.metadata, owner),
        );
      } catch (err) {
        throw toCreateProblem(err, 'checkout_session', idempotencyKey !== undefined);
      }
      await recordSession(caller.owner, session, input.metadata);
      log.info(
        { reqId, sessionId: session.id, amount: session.amount_total, currency: session.currency },
        'checkout session created',
      );
      return session;
    },

    /**
     * `reqId`: the HTTP request's, for the Stripe call's line. With API keys on, a session the ledger does not give
     * the caller is asked of Stripe all the same: one the ledger lacks (its write failed, or the database was
     * restored from an older backup) that names the caller as its owner (OWNER_METADATA_KEY) is recorded and
     * answered, so that the shop's success page still finds it; so is one naming no owner (nor the ledger any) when
     * UNOWNED_PAYMENTS_OWNER names the caller's owner. Any other (an unknown id, another owner's session, one naming
     * no owner) gets the same 404 after the same Stripe call.
     * So an unknown id costs a Stripe call, and the ledger cannot spare it: an id the ledger has no row for may be
     * exactly such a session (ids say nothing of their owner), and only Stripe's metadata tells. Nor is another
     * owner's session (which the ledger does know) answered from the ledger: its 404 would then come without the
     * round trip an unknown id waits for, and stay a 404 while Stripe fails and an unknown id gets 503, telling the
     * caller that the session exists. Callers need a key with payments:read, and its rate limit bounds the calls.
     */
    async getCheckoutSession(caller: Caller, id: string, reqId?: string) {
      const row = await ownedRow(caller, id);
      const learn = !row && !isOpenMode(caller);
      if (learn && !ownersMatter) throw notFound('checkout session');
      let session: Stripe.Checkout.Session;
      try {
        // Learning with UNOWNED_PAYMENTS_OWNER set, its payment intent expanded (whose metadata may name an owner:
        // ownerOfSessionNamed), in the one call every caller learning a session makes, whoever's it is.
        const params: Stripe.Checkout.SessionRetrieveParams =
          learn && unowned ? { expand: ['payment_intent'] } : {};
        session = await withoutCallSite(() =>
          stripe.checkout.sessions.retrieve(id, params, logContextOptions({ reqId })),
        );
      } catch (err) {
        if (learn && classifyStripeError(err) === 'not_found') throw notFound('checkout session');
        throw toProblem(err, 'checkout_session');
      }
      if (learn) {
        // A session naming no owner (and none in the ledger), whose intent names none either, is
        // UNOWNED_PAYMENTS_OWNER's, if set.
        const named = await ownerOfSessionAtStripe(session, { reqId });
        if (named !== caller.owner || (await store.payments.get(id))?.owner)
          throw notFound('checkout session');
        const recorded = await recordSession(named, session);
        if (recorded.owner !== caller.owner) throw notFound('checkout session');
        log.info(
          { reqId, sessionId: id },
          ownerNamedBy(session)
            ? 'recorded a checkout session the ledger lacked, for its owner'
            : 'recorded a checkout session naming no owner, for UNOWNED_PAYMENTS_OWNER',
        );
        return session;
      }
      await recordSession(row?.owner ?? caller.owner, session);
      return session;
    },

    /** `idempotencyKey`: the caller's Idempotency-Key, if any (see stripeKey): a retry never charges twice. */
    /** `reqId`: as for createCheckoutSession. */
    async createPaymentIntent(
      caller: Caller,
      given: PaymentIntentInput,
      idempotencyKey?: string,
      reqId?: string,
    ) {
      // The currency in lower case (as an Idempotency-Key compares the body: as-taken.ts).
      const input: PaymentIntentInput = paymentIntentAsTaken(given);
      requireSupportedCurrency(input.currency, 'currency');
      requireAmountWithinMax(input.amount, input.currency, 'amount');
      requireAmountFitsCurrency(input.amount, input.currency, 'amount');
      requireMetadataFits(input.metadata);
      requireNoReservedMetadata(given.metadata);
      // With API keys on, the intent names its owner at Stripe too (OWNER_METADATA_KEY), in one of Stripe's 50 keys.
      const owner = ownersMatter && !isOpenMode(caller) ? caller.owner : null;
      const metadata = withOwnerMetadata(input.metadata, owner, 'payment intent');
      // Stripe refuses to confirm an intent without a payment method; dropping `confirm` would answer 200 with
      // an intent the caller believes confirmed.
      if (input.confirm && !input.payment_method) {
        throw new ProblemError(400, 'confirm: true needs a payment_method to confirm with.', {
          code: 'parameter_missing',
          param: 'payment_method',
          errors: [{ path: '/body/payment_method', message: 'is required when confirm is true' }],
        });
      }
      const options = {
        idempotencyKey: stripeKey('payment_intent', caller, idempotencyKey),
        ...logContextOptions({ reqId }),
      };
      let pi: Stripe.PaymentIntent;
      try {
        // The metadata as taken; as sent too, for a key an earlier version used so (createWithMetadata).
        pi = await createWithMetadata(
          (sent) =>
            withoutCallSite(() => stripe.paymentIntents.create(intentCreateParams(input, sent), options)),
          metadata,
          metadataAsSent(given.metadata, owner),
        );
      } catch (err) {
        // A declined confirmation still created the intent; remember it, and name it in the 402, so the caller can
        // retry or inspect it.
        const declined = (err as { payment_intent?: Stripe.PaymentIntent }).payment_intent;
        if (declined?.id) await recordIntent(caller.owner, declined).catch(() => undefined);
        // Creating an intent cannot miss the intent itself: what Stripe did not find is the payment method.
        if (input.payment_method && classifyStripeError(err) === 'not_found') {
          throw new ProblemError(400, 'No such payment method.', {
            code: 'resource_missing',
            param: 'payment_method',
            errors: [{ path: '/body/payment_method', message: 'is not a payment method Stripe knows' }],
            cause: err,
          });
        }
        const problem = toCreateProblem(err, 'payment_intent', idempotencyKey !== undefined);
        if (problem.status !== 402 || !declined?.id) throw problem;
        throw new ProblemError(402, problem.detail, { ...problem.extras, payment_intent_id: declined.id });
      }
      try {
        await recordIntent(caller.owner, pi);
      } catch (err) {
        throw unrecordedIntentProblem(err, pi, idempotencyKey !== undefined);
      }
      log.info(
        { reqId, paymentIntentId: pi.id, amount: pi.amount, currency: pi.currency, status: pi.status },
        'payment intent created',
      );
      return pi;
    },

    /** An intent's client secret, from Stripe: for a replayed create, whose kept answer leaves it out. */
    async clientSecretOf(id: string, reqId?: string): Promise<string> {
      try {
        const pi = await withoutCallSite(() =>
          stripe.paymentIntents.retrieve(id, {}, logContextOptions({ reqId, payment_intent: id })),
        );
        return pi.client_secret ?? '';
      } catch (err) {
        throw toProblem(err, 'payment_intent');
      }
    },

    /** `reqId`: the HTTP request's, for the Stripe calls' lines. */
    async getPaymentIntent(caller: Caller, id: string, reqId?: string) {
      // Usually the intent's own row: read together with what its refunds hold, in one statement.
      const direct = await store.payments.getForOwnerWithCommitted(id, caller.owner);
      const row = direct?.payment ?? (await ownedRowOrLearnt(caller, id, reqId));
      if (!row && !isOpenMode(caller)) throw notFound('payment intent');
      // The intent's own row as it was before Stripe was asked (the session's row may be what made it visible).
      const seen = row?.id === id ? row : await store.payments.get(id);
      let pi: Stripe.PaymentIntent;
      try {
        pi = await withoutCallSite(() =>
          stripe.paymentIntents.retrieve(id, {}, logContextOptions({ reqId, payment_intent: id })),
        );
      } catch (err) {
        throw toProblem(err, 'payment_intent');
      }
      if (!seen || seen.status !== pi.status || seen.amount !== pi.amount)
        await recordIntentRead(row?.owner ?? caller.owner, pi, seen);
      // What the refunds held when the row was read (before the Stripe call): as of that read, as any answer is.
      const amountRefunded =
        direct?.payment.id === pi.id ? direct.committed : await store.refunds.sumCommitted(pi.id);
      return { pi, amountRefunded };
    },

    /**
     * Records Stripe's current view of an intent (from a webhook), keeping the owner we know. An intent we know
     * no owner for may be a checkout session's whose `checkout.session.completed` has not arrived yet (Stripe
     * sends the intent's events first): its session is asked for (ownerOfIntent), so that the session's owner
     * can read and refund the payment at once instead of getting 404 until the session's event is applied.
     * `seen`: the intent's row as last read before Stripe was asked (null: no row), given by an event's applier
     * (applyIntent); the row is then written only if it is still as seen (PaymentsRepo.upsertIfUnchanged), and
     * null comes back when it was not (it was written since, maybe from a newer read, or a final row was kept).
     */
    async applyStripePaymentIntent(
      pi: Stripe.PaymentIntent,
      seen?: Pick<Payment, 'status' | 'updatedAt'> | null,
    ): Promise<Payment | null> {
      const owner = await ownerOfIntent(pi.id, {}, { intent: pi });
      if (seen === undefined) return recordIntent(owner, pi);
      // As recordIntent writes it, the final-status guard included.
      return store.payments.upsertIfUnchanged(intentRow(owner, pi), seen, {
        finalStatuses: FINAL_INTENT_STATUS_LIST,
      });
    },

    ownerOfIntent,

    /**
     * Records Stripe's current view of a session (from a webhook), keeping the owner we know, else (API keys on) the
     * owner the session names at Stripe (OWNER_METADATA_KEY: a session whose row the ledger lacks), else
     * UNOWNED_PAYMENTS_OWNER's when its intent names no owner either (ownerOfSessionAtStripe, which asks Stripe for
     * the intent of a session naming no owner when the setting is on).
     */
    async applyStripeSession(session: Stripe.Checkout.Session): Promise<Payment> {
      const known = await store.payments.get(session.id);
      return recordSession(
        known?.owner || (ownersMatter ? await ownerOfSessionAtStripe(session) : ''),
        session,
      );
    },

    /** The ledger row that makes `id` visible to the caller (read with `repos`, e.g. inside a transaction). */
    ownedRow,

    /**
     * The payment a refund is checked against, fresh enough to trust its amount: the ledger row when it
     * already says `succeeded`, otherwise Stripe's current view. A checkout payment whose events have not come
     * is learnt from Stripe (ownedRowOrLearnt).
     */
    async resolveForRefund(caller: Caller, paymentIntentId: string, reqId?: string): Promise<Payment> {
      const row = await ownedRowOrLearnt(caller, paymentIntentId, reqId);
      if (!row && !isOpenMode(caller)) throw notFound('payment intent');
      const own = row?.id === paymentIntentId ? row : await store.payments.get(paymentIntentId);
      if (own?.status === 'succeeded') return own;
      let pi: Stripe.PaymentIntent;
      try {
        pi = await withoutCallSite(() =>
          stripe.paymentIntents.retrieve(
            paymentIntentId,
            {},
            logContextOptions({ reqId, payment_intent: paymentIntentId }),
          ),
        );
      } catch (err) {
        throw toProblem(err, 'payment_intent');
      }
      const recorded = await recordIntentRead(row?.owner ?? caller.owner, pi, own);
      if (recorded) return recorded;
      // The row was written meanwhile (an event's newer read): left so. A final status written so is newer than this
      // read (Stripe never leaves one): the refund is checked against it (an intent paid meanwhile is refunded, not
      // refused with the older read); otherwise against the status Stripe answered (not succeeded: recordIntentRead
      // always writes a final status).
      const now = await store.payments.get(pi.id);
      if (!now) return recordIntent(row?.owner ?? caller.owner, pi);
      if (FINAL_INTENT_STATUSES.has(now.status)) return now;
      return { ...now, status: pi.status, amount: pi.amount, currency: pi.currency };
    },
  };
}

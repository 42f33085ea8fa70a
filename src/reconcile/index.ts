/**
 * Compares the ledger with Stripe for a time window and reports every difference: payments whose status or amount
 * (with its currency) disagree, payments Stripe has that the ledger lacks, refunds Stripe has that the ledger lacks
 * (made in the dashboard while webhooks were down), refunds the ledger has that Stripe does not, refunds and payments
 * made earlier that Stripe changed in the window, and refunds stuck in flight (made in the window or before).
 */
import type Stripe from 'stripe';
import {
  isTerminalRefundStatus,
  OPEN_REFUND_STATUSES,
  type Payment,
  type Refund,
  type Store,
} from '../store/index.js';
import { OWNER_METADATA_KEY } from '../payments/service.js';
import { ledgerRowOf, paymentIntentOf } from '../refunds/service.js';
import type { StripeClient } from '../stripe/client.js';
import { PAYMENT_INTENT_EVENT_TYPES } from '../webhooks/apply.js';

export type DriftKind =
  | 'payment_missing_in_stripe'
  | 'payment_status'
  | 'payment_amount'
  | 'payment_missing_in_ledger'
  | 'refund_missing_in_ledger'
  | 'refund_missing_in_stripe'
  | 'refund_status'
  | 'refund_amount'
  | 'refund_stuck';

export interface Drift {
  kind: DriftKind;
  /** Stripe id, or our request id when Stripe has none. */
  id: string;
  detail: string;
}

export interface ReconcileProgress {
  phase: 'payments' | 'stripe payments' | 'stripe refunds' | 'stripe changes' | 'ledger refunds';
  done: number;
  total: number | null;
}

export interface ReconcileOptions {
  store: Store;
  stripe: StripeClient;
  since: Date;
  /** Refunds not final after this long count as stuck. */
  stuckAfterMs?: number;
  concurrency?: number;
  onProgress?: (p: ReconcileProgress) => void;
}

export interface ReconcileReport {
  since: string;
  checked: {
    payments: number;
    stripePayments: number;
    stripeRefunds: number;
    /** Refunds and payment intents made before the window that Stripe's events say changed in it. */
    stripeChanged: number;
    ledgerRefunds: number;
  };
  drifts: Drift[];
}

const PAGE = 200;
/**
 * Events of a refund's change after its creation (refund.created comes with a refund the window's list holds).
 * charge.refund.updated too: Stripe sends the refund.* events for a refund of a charge (every card refund) only from
 * API version 2024-10-28.acacia on, so an account on an earlier version learns such a refund's change (a bank sending
 * it back) from charge.refund.updated alone, as the webhooks do (REFUND_EVENT_TYPES in src/webhooks/apply.ts).
 */
const REFUND_CHANGE_EVENT_TYPES: readonly string[] = [
  'refund.updated',
  'refund.failed',
  'charge.refund.updated',
];
/** Refunds not final read for the stuck check beyond the window, those unchanged longest first. */
const STUCK_LIMIT = 1_000;

/** Walks a keyset-paged ledger listing (ordered by createdAt, then id) to the end. */
async function* pages<T extends { createdAt: string }>(
  since: Date,
  page: (since: string | Date, limit: number, afterId?: string) => Promise<T[]>,
  idOf: (row: T) => string,
): AsyncGenerator<T> {
  let cursor: { since: string | Date; after?: string } = { since };
  for (;;) {
    const rows = await page(cursor.since, PAGE, cursor.after);
    for (const r of rows) yield r;
    if (rows.length < PAGE) return;
    const last = rows[rows.length - 1]!;
    cursor = { since: last.createdAt, after: idOf(last) };
  }
}

const ledgerPayments = (store: Store, since: Date): AsyncGenerator<Payment> =>
  pages(
    since,
    (s, n, after) => store.payments.listCreatedSince(s, n, after),
    (p) => p.id,
  );

const ledgerRefunds = (store: Store, since: Date): AsyncGenerator<Refund> =>
  pages(
    since,
    (s, n, after) => store.refunds.listCreatedSince(s, n, after),
    (r) => r.requestId,
  );

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

/**
 * Whose a payment intent is, as its metadata names it at Stripe (OWNER_METADATA_KEY, written by the service on every
 * intent it creates): an intent the service made whose ledger write failed names its owner; one made in the
 * dashboard or by another integration names none.
 */
function ownerOf(pi: Stripe.PaymentIntent): string {
  const owner = pi.metadata?.[OWNER_METADATA_KEY];
  // With API_AUTH=off the service names no owner either: "outside the service" alone was false for its own intents.
  return typeof owner === 'string' && owner !== ''
    ? `owner ${owner}`
    : 'no owner (made outside the service, or by it with API_AUTH=off)';
}

function isMissing(err: unknown): boolean {
  const e = err as { statusCode?: number; code?: string };
  return e.statusCode === 404 || e.code === 'resource_missing';
}

export async function reconcile(opts: ReconcileOptions): Promise<ReconcileReport> {
  const { store, stripe, since } = opts;
  const concurrency = opts.concurrency ?? 8;
  const stuckAfterMs = opts.stuckAfterMs ?? 60 * 60_000;
  const drifts: Drift[] = [];
  const progress = opts.onProgress ?? (() => undefined);

  // 1. Payment intents in the ledger against Stripe.
  const payments: Payment[] = [];
  for await (const p of ledgerPayments(store, since)) if (p.kind === 'payment_intent') payments.push(p);
  /** A drift when the ledger's value and Stripe's differ. */
  function disagree(kind: DriftKind, id: string, ledger: unknown, atStripe: unknown): void {
    if (ledger !== atStripe)
      drifts.push({ kind, id, detail: `ledger says ${String(ledger)}, Stripe says ${String(atStripe)}` });
  }

  /**
   * An amount is money only with its currency: one that differs is an amount drift too, said with both currencies
   * (a ledger currency not known yet, a refund's before Stripe answered, is not compared).
   */
  function disagreeOnMoney(
    kind: DriftKind,
    id: string,
    ledger: { amount: number; currency: string | null },
    atStripe: { amount: number; currency: string },
  ): void {
    if (ledger.currency === null || ledger.currency.toLowerCase() === atStripe.currency.toLowerCase())
      disagree(kind, id, ledger.amount, atStripe.amount);
    else
      drifts.push({
        kind,
        id,
        detail: `ledger says ${ledger.amount} ${ledger.currency}, Stripe says ${atStripe.amount} ${atStripe.currency}`,
      });
  }

  let done = 0;
  await inBatches(payments, concurrency, async (p) => {
    try {
      const pi = await stripe.paymentIntents.retrieve(p.id);
      disagree('payment_status', p.id, p.status, pi.status);
      disagreeOnMoney('payment_amount', p.id, p, pi);
    } catch (err) {
      if (!isMissing(err)) throw err;
      drifts.push({
        kind: 'payment_missing_in_stripe',
        id: p.id,
        detail: 'in the ledger, unknown to Stripe',
      });
    }
    progress({ phase: 'payments', done: ++done, total: payments.length });
  });

  // 2. Every Stripe payment intent of the window must be in the ledger. The webhooks record one the service did not
  // make, so one still missing was made while they did not arrive, or by a create whose ledger write failed.
  const created = { gte: Math.floor(since.getTime() / 1000) };
  const known = new Set(payments.map((p) => p.id));
  /** Stripe payment intents of the window the ledger lacks (reported already). */
  const missing = new Set<string>();
  let stripePayments = 0;
  for await (const pi of stripe.paymentIntents.list({
    created,
    limit: 100,
  }) as AsyncIterable<Stripe.PaymentIntent>) {
    stripePayments++;
    // Made before the window's ledger rows, or known so far only through its checkout session's row.
    if (!known.has(pi.id) && !(await store.payments.findByPaymentIntent(pi.id))) {
      missing.add(pi.id);
      drifts.push({
        kind: 'payment_missing_in_ledger',
        id: pi.id,
        detail: `Stripe has a ${pi.status} payment of ${pi.amount} ${pi.currency} that the ledger lacks; ${ownerOf(pi)}`,
      });
    }
    progress({ phase: 'stripe payments', done: stripePayments, total: null });
  }

  function compareRefund(row: Refund, r: Stripe.Refund): void {
    disagree('refund_status', r.id, row.status, r.status);
    disagreeOnMoney('refund_amount', r.id, row, r);
  }

  // 3. Every Stripe refund of the window must be in the ledger, with the same status and amount.
  const seen = new Set<string>();
  let stripeRefunds = 0;
  for await (const r of stripe.refunds.list({ created, limit: 100 }) as AsyncIterable<Stripe.Refund>) {
    stripeRefunds++;
    seen.add(r.id);
    // Matched as the webhooks match it: a refund they would record as made outside the service is missing.
    const row = await ledgerRowOf(store, r);
    if (!row) {
      drifts.push({
        kind: 'refund_missing_in_ledger',
        id: r.id,
        detail: `Stripe has a ${r.status} refund of ${r.amount} ${r.currency} on ${String(paymentIntentOf(r))} that the ledger lacks`,
      });
    } else compareRefund(row, r);
    progress({ phase: 'stripe refunds', done: stripeRefunds, total: null });
  }

  // 4. Refunds and payment intents made before the window that Stripe changed in it, as its events of the window name
  // them: run from cron with `--since 24h`, a refund that failed days after it succeeded (the customer's bank sent
  // it back), or a payment confirmed a day after it was made, whose webhook never came, was compared by no run.
  // Compared as they are now, when the ledger has them; one the ledger lacks is the concern of the runs whose window
  // holds its creation.
  const changedRefunds = new Set<string>();
  const changedPayments = new Set<string>();
  const comparedPayments = new Set([...known, ...missing]);
  for await (const ev of stripe.events.list({
    created,
    types: [...REFUND_CHANGE_EVENT_TYPES, ...PAYMENT_INTENT_EVENT_TYPES],
    limit: 100,
  }) as AsyncIterable<Stripe.Event>) {
    const id = (ev.data.object as { id?: unknown }).id;
    if (typeof id !== 'string') continue;
    if (REFUND_CHANGE_EVENT_TYPES.includes(ev.type)) {
      if (!seen.has(id)) changedRefunds.add(id);
    } else if (!comparedPayments.has(id)) changedPayments.add(id);
  }
  let stripeChanged = 0;
  done = 0;
  const changedTotal = changedRefunds.size + changedPayments.size;
  /** Stripe's object, or null when it no longer has it (a sandbox keeping only its newest objects). */
  async function current<T>(read: Promise<T>): Promise<T | null> {
    try {
      return await read;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }
  await inBatches([...changedRefunds], concurrency, async (id) => {
    const r = await current(stripe.refunds.retrieve(id));
    // One Stripe no longer has is left to step 5, which says so when the ledger has it.
    if (r) seen.add(id);
    const row = r && (await ledgerRowOf(store, r));
    if (r && row) {
      stripeChanged++;
      compareRefund(row, r);
    }
    progress({ phase: 'stripe changes', done: ++done, total: changedTotal });
  });
  await inBatches([...changedPayments], concurrency, async (id) => {
    const row = await store.payments.get(id);
    const pi = row?.kind === 'payment_intent' ? await current(stripe.paymentIntents.retrieve(id)) : null;
    if (row && pi) {
      stripeChanged++;
      disagree('payment_status', id, row.status, pi.status);
      disagreeOnMoney('payment_amount', id, row, pi);
    }
    progress({ phase: 'stripe changes', done: ++done, total: changedTotal });
  });

  // 5. Ledger refunds Stripe did not list, and refunds stuck in flight.
  const ledger: Refund[] = [];
  for await (const r of ledgerRefunds(store, since)) ledger.push(r);
  done = 0;
  const now = Date.now();
  await inBatches(ledger, concurrency, async (r) => {
    if (r.stripeRefundId && !seen.has(r.stripeRefundId)) {
      // Made before the window but recorded in it (a webhook that came late): compared here instead.
      try {
        compareRefund(r, await stripe.refunds.retrieve(r.stripeRefundId));
      } catch (err) {
        if (!isMissing(err)) throw err;
        drifts.push({
          kind: 'refund_missing_in_stripe',
          id: r.stripeRefundId,
          detail: `ledger request ${r.requestId}`,
        });
      }
    }
    if (!r.stripeRefundId && r.status === 'succeeded') {
      drifts.push({
        kind: 'refund_missing_in_stripe',
        id: r.requestId,
        detail: 'succeeded in the ledger without a Stripe refund',
      });
    }
    if (!isTerminalRefundStatus(r.status) && now - Date.parse(r.updatedAt) > stuckAfterMs) stuck(r);
    progress({ phase: 'ledger refunds', done: ++done, total: ledger.length });
  });
  function stuck(r: Refund): void {
    drifts.push({
      kind: 'refund_stuck',
      id: r.stripeRefundId ?? r.requestId,
      detail: `${r.status} since ${r.updatedAt}`,
    });
  }
  // 6. Refunds stuck that were made before the window: run from cron with `--since 24h`, one stuck for longer was
  // reported by the runs whose window held its creation, then by none, though it was still not final. Unchanged
  // longest first, so the read stops at the first one that is not stuck (at most STUCK_LIMIT of them).
  const inWindow = new Set(ledger.map((r) => r.requestId));
  for (const r of await store.refunds.listByStatus(OPEN_REFUND_STATUSES, STUCK_LIMIT)) {
    if (now - Date.parse(r.updatedAt) <= stuckAfterMs) break;
    if (!inWindow.has(r.requestId)) stuck(r);
  }

  return {
    since: since.toISOString(),
    checked: {
      payments: payments.length,
      stripePayments,
      stripeRefunds,
      stripeChanged,
      ledgerRefunds: ledger.length,
    },
    drifts: sortDrifts(drifts),
  };
}

/** Drifts by kind, then id (code-point order, whatever the locale): two runs of one ledger list them alike. */
export function sortDrifts(drifts: Drift[]): Drift[] {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return drifts.sort((a, b) => cmp(a.kind, b.kind) || cmp(a.id, b.id));
}

/** Control characters, and the line and paragraph separators some terminals and readers break lines at. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is matched
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * The text report's line for a drift, on one line: a detail quotes what Stripe holds (the owner a payment's metadata
 * names, which whoever makes a payment in the dashboard sets), so its control characters are escaped as JSON escapes
 * them (`\n`, `\u001b`), and no detail can add a line (a made-up `DRIFT`) or a terminal escape to the report.
 */
export function driftLine(d: Drift): string {
  const escape = (text: string) =>
    text.replace(UNPRINTABLE, (c) => {
      const json = JSON.stringify(c).slice(1, -1);
      return json.startsWith('\\') ? json : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    });
  return `DRIFT ${d.kind} ${escape(d.id)}: ${escape(d.detail)}`;
}

/** `24h`, `30m`, `7d`, `90s` → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`cannot read duration "${text}"; use e.g. 90s, 30m, 24h, 7d`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Number(m[1]) * unit;
  // Stripe's `created` counts from 1970: a window from before, or one no Date can hold, is a bad argument, not a
  // comparison that could not finish.
  if (ms > Date.now()) {
    throw new Error(
      `duration "${text}" reaches back before 1970; use at most ${Math.floor(Date.now() / 86_400_000)}d`,
    );
  }
  return ms;
}

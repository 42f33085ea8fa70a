import type { Kysely, Selectable } from 'kysely';
import { fromDbTime, fromJson, nowIso, toIso, toJson, toNumber } from './codec.js';
import type { TimeInput } from './codec.js';
import { PAYMENT_COLUMNS, qualified, type Database, type PaymentsTable } from './database.js';
import { placeholders, queryTemplate } from './query-template.js';
import { committedOfPayment } from './committed.js';
import type { RepoContext } from './repo-context.js';
import { requireTransaction } from './repo-context.js';
import { afterLastChange } from './changed-at.js';
import type { Dialect } from './migrations.js';

export type PaymentKind = PaymentsTable['kind'];

export interface Payment {
  /** Stripe id: `cs_...` for a checkout session, `pi_...` for a payment intent. */
  id: string;
  kind: PaymentKind;
  /** API key owner that created it; '' when learnt from Stripe only. */
  owner: string;
  /** For a session, its payment intent once known; for a payment intent, null. */
  paymentIntentId: string | null;
  amount: number;
  currency: string;
  /** Stripe's status, verbatim. */
  status: string;
  amountRefunded: number;
  metadata: Record<string, string>;
  customerEmail: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface NewPayment {
  id: string;
  kind: PaymentKind;
  owner?: string;
  paymentIntentId?: string | null;
  amount: number;
  currency: string;
  status: string;
  amountRefunded?: number;
  metadata?: Record<string, string>;
  customerEmail?: string | null;
  createdAt?: TimeInput;
}

export type PaymentPatch = Partial<
  Pick<
    Payment,
    'paymentIntentId' | 'amount' | 'currency' | 'status' | 'amountRefunded' | 'metadata' | 'customerEmail'
  >
>;

export interface PaymentsRepo {
  /** Throws DuplicateKeyError when the id exists. */
  insert(p: NewPayment): Promise<Payment>;
  get(id: string): Promise<Payment | null>;
  /** Null when the payment exists but belongs to someone else, so callers answer 404 either way. */
  getForOwner(id: string, owner: string): Promise<Payment | null>;
  /**
   * getForOwner and, in the same statement, the amount its refunds hold (RefundsRepo.sumCommitted of the
   * row's id): one read for GET /payment-intent/{id}. Null when getForOwner would be.
   */
  getForOwnerWithCommitted(
    id: string,
    owner: string,
  ): Promise<{ payment: Payment; committed: number } | null>;
  /** The payment intent's own row, else the checkout session that led to it. */
  findByPaymentIntent(paymentIntentId: string): Promise<Payment | null>;
  update(id: string, patch: PaymentPatch): Promise<Payment | null>;
  /**
   * Inserts, or refreshes Stripe-owned fields (status, amount, currency, and amountRefunded,
   * paymentIntentId, customerEmail when given) of an existing row. Owner and metadata set by us
   * are kept; they are only filled in when the existing row has none (it was learnt from a webhook).
   * `finalStatuses`: statuses Stripe never leaves; an existing row in one of them is not moved to a
   * different status (the newer view wins even when an older one arrives later) and comes back as it is.
   * One statement, so no transaction or row lock is needed around it.
   */
  upsert(p: NewPayment, opts?: { finalStatuses?: readonly string[] }): Promise<Payment>;
  /**
   * upsert, done only if the row is still as `seen` found it (compare-and-set, in the same one statement): the
   * same status written at the same updatedAt, or no row at all when `seen` is null. Null when nothing was written:
   * the row was written since (or inserted, when none was seen), or `finalStatuses` kept it.
   */
  upsertIfUnchanged(
    p: NewPayment,
    seen: Pick<Payment, 'status' | 'updatedAt'> | null,
    opts?: { finalStatuses?: readonly string[] },
  ): Promise<Payment | null>;
  /**
   * Keyset page ordered by (createdAt, id). First page: rows created at or after `since`. Next
   * pages: pass the last row's createdAt as `since` and its id as `afterId`.
   */
  listCreatedSince(since: TimeInput, limit: number, afterId?: string): Promise<Payment[]>;
  /**
   * Reads the row and, on PostgreSQL, locks it (SELECT ... FOR UPDATE) until the transaction ends,
   * so concurrent refunds of one payment are checked one at a time. On SQLite the transaction's
   * BEGIN IMMEDIATE already serialises writers. Only valid inside store.transaction().
   */
  lockForUpdate(id: string): Promise<Payment | null>;
  /**
   * Clears the customer e-mail address of rows created since `since` (migration 0006 cleared the older ones):
   * a process of a version before 0006 still writes them while it runs beside this one (a rolling update), and
   * Stripe delivers a checkout's events to it for days. Reads the created_at index, not the whole table.
   * Returns how many rows it cleared.
   */
  forgetCustomerEmails(since: TimeInput): Promise<number>;
}

export function toPayment(row: Selectable<PaymentsTable>): Payment {
  return {
    id: row.id,
    kind: row.kind,
    owner: row.owner,
    paymentIntentId: row.payment_intent_id,
    amount: toNumber(row.amount),
    currency: row.currency,
    status: row.status,
    amountRefunded: toNumber(row.amount_refunded),
    metadata: fromJson<Record<string, string>>(row.metadata) ?? {},
    customerEmail: row.customer_email,
    createdAt: fromDbTime(row.created_at),
    updatedAt: fromDbTime(row.updated_at),
  };
}

function patchColumns(patch: PaymentPatch) {
  return {
    ...(patch.paymentIntentId !== undefined && { payment_intent_id: patch.paymentIntentId }),
    ...(patch.amount !== undefined && { amount: patch.amount }),
    ...(patch.currency !== undefined && { currency: patch.currency }),
    ...(patch.status !== undefined && { status: patch.status }),
    ...(patch.amountRefunded !== undefined && { amount_refunded: patch.amountRefunded }),
    ...(patch.metadata !== undefined && { metadata: toJson(patch.metadata) }),
    ...(patch.customerEmail !== undefined && { customer_email: patch.customerEmail }),
  };
}

type PaymentRow = Selectable<PaymentsTable>;
type NewPaymentRow = ReturnType<typeof newRow>;

function newRow(p: NewPayment) {
  const created = p.createdAt === undefined ? nowIso() : toIso(p.createdAt);
  return {
    id: p.id,
    kind: p.kind,
    owner: p.owner ?? '',
    payment_intent_id: p.paymentIntentId ?? null,
    amount: p.amount,
    currency: p.currency,
    status: p.status,
    amount_refunded: p.amountRefunded ?? 0,
    metadata: toJson(p.metadata ?? {}),
    customer_email: p.customerEmail ?? null,
    created_at: created,
    updated_at: created,
  };
}

const ROW_COLUMNS = PAYMENT_COLUMNS satisfies readonly (keyof NewPaymentRow)[];

const getById = queryTemplate<{ id: string }, PaymentRow>('payments.get', ['id'], (db, p) =>
  db.selectFrom('payments').select(PAYMENT_COLUMNS).where('id', '=', p('id')),
);

const getForOwner = queryTemplate<{ id: string; owner: string }, PaymentRow>(
  'payments.getForOwner',
  ['id', 'owner'],
  (db, p) =>
    db
      .selectFrom('payments')
      .select(PAYMENT_COLUMNS)
      .where('id', '=', p('id'))
      .where('owner', '=', p('owner')),
);

const getForOwnerWithCommitted = queryTemplate<
  { id: string; owner: string },
  PaymentRow & { committed: number | string | null }
>('payments.getForOwnerWithCommitted', ['id', 'owner'], (db, p) =>
  db
    .selectFrom('payments as p')
    .select(qualified('p', PAYMENT_COLUMNS))
    .select(committedOfPayment)
    .where('p.id', '=', p('id'))
    .where('p.owner', '=', p('owner')),
);

const lockById = {
  sqlite: getById,
  postgres: queryTemplate<{ id: string }, PaymentRow>('payments.lockForUpdate', ['id'], (db, p) =>
    db.selectFrom('payments').select(PAYMENT_COLUMNS).where('id', '=', p('id')).forUpdate(),
  ),
};

/**
 * The row as a compare-and-set write expects it: its status and updated_at, both null for "no row" (which no
 * existing row matches: `= NULL` is never true).
 */
interface SeenParams {
  seen_status: string | null;
  seen_updated_at: string | null;
}

type UpsertParams = NewPaymentRow & { now: string } & Partial<SeenParams>;

/**
 * One template per shape: with or without amount_refunded, per list of final statuses, and with or without the
 * compare-and-set condition (`ifSeen`).
 */
const upserts = new Map<string, ReturnType<typeof upsertTemplate>>();

function upsertTemplate(
  dialect: Dialect,
  refreshRefunded: boolean,
  final: readonly string[],
  ifSeen: boolean,
) {
  return queryTemplate<UpsertParams, PaymentRow>(
    `payments.upsert(${dialect},${String(refreshRefunded)},${final.join('|')}${ifSeen ? ',ifSeen' : ''})`,
    [...ROW_COLUMNS, 'now', ...(ifSeen ? (['seen_status', 'seen_updated_at'] as const) : [])],
    (db, p) =>
      db
        .insertInto('payments')
        .values(placeholders(p, ROW_COLUMNS))
        .onConflict((oc) => {
          const update = oc.column('id').doUpdateSet((eb) => ({
            status: eb.ref('excluded.status'),
            amount: eb.ref('excluded.amount'),
            currency: eb.ref('excluded.currency'),
            ...(refreshRefunded && { amount_refunded: eb.ref('excluded.amount_refunded') }),
            payment_intent_id: eb.fn.coalesce('excluded.payment_intent_id', 'payments.payment_intent_id'),
            customer_email: eb.fn.coalesce('excluded.customer_email', 'payments.customer_email'),
            owner: eb
              .case()
              .when('payments.owner', '=', '')
              .then(eb.ref('excluded.owner'))
              .else(eb.ref('payments.owner'))
              .end(),
            metadata: eb
              .case()
              .when('payments.metadata', '=', '{}')
              .then(eb.ref('excluded.metadata'))
              .else(eb.ref('payments.metadata'))
              .end(),
            // After the row's last change: upsertIfUnchanged's compare-and-set takes (status, updated_at) for
            // "unchanged", so a write within the millisecond of the one before (or after one dated ahead of this
            // clock) must not leave the row at a time it already had (see afterLastChange).
            updated_at: afterLastChange(dialect, p('now'), { column: 'payments.updated_at' }),
          }));
          const guarded =
            final.length === 0
              ? update
              : update.where((eb) =>
                  eb.or([
                    eb('payments.status', 'not in', final),
                    eb('payments.status', '=', eb.ref('excluded.status')),
                  ]),
                );
          return ifSeen
            ? guarded
                .where('payments.status', '=', p('seen_status'))
                .where('payments.updated_at', '=', p('seen_updated_at'))
            : guarded;
        })
        .returning(PAYMENT_COLUMNS),
  );
}

/**
 * forgetCustomerEmails as one statement. It reads payments_customer_email_idx (migration 0008), which holds only
 * the rows with an address, rather than every payment of the week by created_at.
 */
export function forgetCustomerEmailsQuery(db: Kysely<Database>, since: string) {
  return db
    .updateTable('payments')
    .set({ customer_email: null })
    .where('created_at', '>=', since)
    .where('customer_email', 'is not', null);
}

export function createPaymentsRepo(ctx: RepoContext): PaymentsRepo {
  const { db } = ctx;

  /** The upsert statement; with `seen`, written only if the row is as seen. Undefined when nothing was written. */
  function upsertWith(p: NewPayment, final: readonly string[], seen: SeenParams | undefined) {
    const refreshRefunded = p.amountRefunded !== undefined;
    const key = `${ctx.dialect}:${String(refreshRefunded)}:${final.join('|')}:${String(seen !== undefined)}`;
    let template = upserts.get(key);
    if (!template)
      upserts.set(key, (template = upsertTemplate(ctx.dialect, refreshRefunded, final, seen !== undefined)));
    return template.first(db, ctx.dialect, { ...newRow(p), now: nowIso(), ...seen });
  }

  return {
    async insert(p) {
      const row = await db
        .insertInto('payments')
        .values(newRow(p))
        .returning(PAYMENT_COLUMNS)
        .executeTakeFirstOrThrow();
      return toPayment(row);
    },

    async get(id) {
      const row = await getById.first(db, ctx.dialect, { id });
      return row ? toPayment(row) : null;
    },

    async getForOwner(id, owner) {
      const row = await getForOwner.first(db, ctx.dialect, { id, owner });
      return row ? toPayment(row) : null;
    },

    async getForOwnerWithCommitted(id, owner) {
      const row = await getForOwnerWithCommitted.first(db, ctx.dialect, { id, owner });
      // toPayment reads the payment's own columns and ignores `committed`.
      return row ? { payment: toPayment(row), committed: toNumber(row.committed) } : null;
    },

    async findByPaymentIntent(paymentIntentId) {
      const rows = await db
        .selectFrom('payments')
        .select(PAYMENT_COLUMNS)
        .where((eb) => eb.or([eb('id', '=', paymentIntentId), eb('payment_intent_id', '=', paymentIntentId)]))
        .orderBy('created_at', 'desc')
        .limit(10)
        .execute();
      const row = rows.find((r) => r.id === paymentIntentId) ?? rows[0];
      return row ? toPayment(row) : null;
    },

    async update(id, patch) {
      const row = await db
        .updateTable('payments')
        .set({ ...patchColumns(patch), updated_at: afterLastChange(ctx.dialect, nowIso()) })
        .where('id', '=', id)
        .returning(PAYMENT_COLUMNS)
        .executeTakeFirst();
      return row ? toPayment(row) : null;
    },

    async upsert(p, opts) {
      const row = await upsertWith(p, opts?.finalStatuses ?? [], undefined);
      if (row) return toPayment(row);
      // The guard kept a final row as it was: return that row.
      const kept = await getById.first(db, ctx.dialect, { id: p.id });
      if (!kept) throw new Error(`payment ${p.id} vanished during upsert`);
      return toPayment(kept);
    },

    async upsertIfUnchanged(p, seen, opts) {
      const row = await upsertWith(p, opts?.finalStatuses ?? [], {
        seen_status: seen?.status ?? null,
        seen_updated_at: seen === null ? null : toIso(seen.updatedAt),
      });
      return row ? toPayment(row) : null;
    },

    async forgetCustomerEmails(since) {
      const result = await forgetCustomerEmailsQuery(db, toIso(since)).executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async listCreatedSince(since, limit, afterId) {
      const from = toIso(since);
      const rows = await db
        .selectFrom('payments')
        .select(PAYMENT_COLUMNS)
        .where((eb) =>
          afterId === undefined
            ? eb('created_at', '>=', from)
            : eb.or([
                eb('created_at', '>', from),
                eb.and([eb('created_at', '=', from), eb('id', '>', afterId)]),
              ]),
        )
        .orderBy('created_at')
        .orderBy('id')
        .limit(limit)
        .execute();
      return rows.map(toPayment);
    },

    async lockForUpdate(id) {
      requireTransaction(ctx, 'payments.lockForUpdate');
      const row = await lockById[ctx.dialect].first(db, ctx.dialect, { id });
      return row ? toPayment(row) : null;
    },
  };
}

import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import type { Repos, Store } from '../../src/store/index.js';
import { barrier, describeStore, uid } from './harness.js';

const PAYMENT_AMOUNT = 1_000;
const REFUND_AMOUNT = 150;
const CONCURRENT = 20;

/** The guard's read: the payment, locked, and what its refunds already hold. */
type GuardRead = (tx: Repos, piId: string) => Promise<{ amount: number; committed: number }>;

const READS: [string, GuardRead][] = [
  [
    'lockForUpdate, then sumCommitted',
    async (tx, piId) => {
      const payment = await tx.payments.lockForUpdate(piId);
      if (!payment) throw new Error('payment missing');
      return { amount: payment.amount, committed: await tx.refunds.sumCommitted(piId) };
    },
  ],
  [
    "lockForAccept (the refund service's read)",
    async (tx, piId) => {
      const { payment, committed, existing } = await tx.refunds.lockForAccept(uid('req'), piId);
      if (!payment || existing) throw new Error('payment missing or request replayed');
      return { amount: payment.amount, committed };
    },
  ],
];
const lockThenSum = READS[0]![1];

/** The refund service's guard: lock the payment, read what is committed, insert only if it fits. */
async function tryRefund(store: Store, piId: string, read: GuardRead = lockThenSum): Promise<boolean> {
  return store.transaction(async (tx) => {
    const { amount, committed } = await read(tx, piId);
    // Give every other transaction the chance to interleave between the check and the write.
    await sleep(2);
    if (committed + REFUND_AMOUNT > amount) return false;
    await tx.refunds.insert({
      requestId: uid('req'),
      paymentIntentId: piId,
      amount: REFUND_AMOUNT,
      status: 'queued',
      mode: 'async',
    });
    return true;
  });
}

/**
 * Starts a transaction on `store` that runs `hold` (which takes the payment's lock and may write) and then
 * keeps it open; resolves once `hold` has run. `release()` lets it commit; `committed` settles then.
 */
async function holdLock(
  store: Store,
  hold: (tx: Repos) => Promise<unknown>,
): Promise<{ release: () => void; committed: Promise<void> }> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const holding = new Promise<void>((resolve) => (held = resolve));
  const committed = store.transaction(async (tx) => {
    await hold(tx);
    held();
    await gate;
  });
  await Promise.race([holding, committed]);
  return { release, committed };
}

/** A refund of `PAYMENT_AMOUNT - REFUND_AMOUNT + 1` on `paymentIntentId`: no room is left for one more. */
const almostAll = (paymentIntentId: string) => ({
  requestId: uid('req'),
  paymentIntentId,
  amount: PAYMENT_AMOUNT - REFUND_AMOUNT + 1,
  status: 'queued' as const,
  mode: 'sync' as const,
});

async function newPayment(store: Store): Promise<string> {
  const id = uid('pi');
  await store.payments.insert({
    id,
    kind: 'payment_intent',
    amount: PAYMENT_AMOUNT,
    currency: 'usd',
    status: 'succeeded',
  });
  return id;
}

describeStore('store concurrency', (h) => {
  const expectedRefunds = Math.floor(PAYMENT_AMOUNT / REFUND_AMOUNT);

  it(`${CONCURRENT} concurrent lock-check-insert transactions never refund more than the payment`, async () => {
    const pi = await newPayment(h.store);
    const results = await Promise.all(Array.from({ length: CONCURRENT }, () => tryRefund(h.store, pi)));
    expect(results.filter(Boolean)).toHaveLength(expectedRefunds);
    expect(await h.store.refunds.sumCommitted(pi)).toBe(expectedRefunds * REFUND_AMOUNT);
    expect(await h.store.refunds.listForPaymentIntent(pi)).toHaveLength(expectedRefunds);
  });

  it.each(READS)(
    'the same holds across two Store instances (separate connections) on one database, reading through %s',
    async (_, read) => {
      const other = await h.openSibling();
      const pi = await newPayment(h.store);
      const results = await Promise.all(
        Array.from({ length: CONCURRENT }, (_, i) => tryRefund(i % 2 === 0 ? h.store : other, pi, read)),
      );
      expect(results.filter(Boolean)).toHaveLength(expectedRefunds);
      expect(await other.refunds.sumCommitted(pi)).toBe(expectedRefunds * REFUND_AMOUNT);
    },
  );

  it.each(READS)(
    'a transaction reading through %s waits for another connection’s lock, then counts its refund',
    async (_, read) => {
      const other = await h.openSibling();
      const pi = await newPayment(h.store);
      const first = await holdLock(h.store, async (tx) => {
        await read(tx, pi);
        await tx.refunds.insert({
          requestId: uid('req'),
          paymentIntentId: pi,
          amount: 900,
          status: 'queued',
          mode: 'sync',
        });
      });
      let secondSaw: number | undefined;
      const second = other.transaction(async (tx) => {
        secondSaw = (await read(tx, pi)).committed;
      });
      await sleep(50);
      expect(secondSaw).toBeUndefined(); // still waiting for the first transaction
      first.release();
      await Promise.all([first.committed, second]);
      expect(secondSaw).toBe(900);
    },
  );

  it(`${CONCURRENT} concurrent insertIfAbsent of one event id: exactly one is new`, async () => {
    const other = await h.openSibling();
    const eventId = uid('evt');
    const results = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) =>
        (i % 2 ? other : h.store).inbox.insertIfAbsent({ eventId, type: 'charge.refunded', payload: { i } }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const stored = await h.store.inbox.get(eventId);
    expect(stored?.payload).toEqual({ i: results.indexOf(true) });
  });

  it(`${CONCURRENT} concurrent idempotency begins: exactly one starts, also when taking over an expired key`, async () => {
    const other = await h.openSibling();
    const key = uid('idem');
    const t0 = new Date();
    const begins = (at: Date) =>
      Promise.all(
        Array.from({ length: CONCURRENT }, (_, i) =>
          (i % 2 ? other : h.store).idempotency.begin('acme', key, 'h', 1_000, at),
        ),
      );
    const first = await begins(t0);
    expect(first.filter((r) => r.kind === 'started')).toHaveLength(1);
    expect(first.filter((r) => r.kind === 'in_progress')).toHaveLength(CONCURRENT - 1);

    const afterExpiry = await begins(new Date(t0.getTime() + 1_000));
    expect(afterExpiry.filter((r) => r.kind === 'started')).toHaveLength(1);
    expect(afterExpiry.filter((r) => r.kind === 'in_progress')).toHaveLength(CONCURRENT - 1);
  });

  it('two relays claiming the outbox concurrently never get the same row', async () => {
    const options = h.newDatabase();
    const a = await h.open(options);
    const b = await h.open(options);
    const total = 60;
    for (let i = 0; i < total; i++) await a.outbox.add({ destination: 'q', messageId: `m${i}`, payload: i });

    const drain = async (store: Store) => {
      const got: number[] = [];
      for (;;) {
        const batch = await store.outbox.claimBatch(7);
        if (batch.length === 0) return got;
        got.push(...batch.map((m) => m.id));
        await sleep(1);
      }
    };
    // Two relays per store: concurrent claimers on the same connection pool and across pools.
    const all = (await Promise.all([drain(a), drain(b), drain(a), drain(b)])).flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all).toHaveLength(total);
  });

  it('two workers claiming the inbox concurrently never get the same event', async () => {
    const options = h.newDatabase();
    const a = await h.open(options);
    const b = await h.open(options);
    const total = 40;
    for (let i = 0; i < total; i++)
      await a.inbox.insertIfAbsent({ eventId: `evt_${i}`, type: 't', payload: i });
    const drain = async (store: Store) => {
      const got: string[] = [];
      for (;;) {
        const batch = await store.inbox.claimUnprocessed(5);
        if (batch.length === 0) return got;
        got.push(...batch.map((e) => e.eventId));
        await sleep(1);
      }
    };
    const [fromA, fromB] = await Promise.all([drain(a), drain(b)]);
    const all = [...fromA, ...fromB];
    expect(new Set(all).size).toBe(total);
    expect(all).toHaveLength(total);
  });

  if (h.dialect === 'sqlite')
    it('gives up with SQLITE_BUSY once the busy timeout has passed', async () => {
      const impatient = await h.openSibling({ sqliteBusyTimeoutMs: 30, transactionAttempts: 2 });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let holding!: () => void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      const pi = uid('pi');
      const holder = h.store.transaction(async (tx) => {
        await tx.payments.insert({
          id: pi,
          kind: 'payment_intent',
          amount: 1,
          currency: 'usd',
          status: 'succeeded',
        });
        holding();
        await gate;
      });
      await held;
      const error = await impatient.transaction((tx) => tx.payments.get(pi)).catch((e: unknown) => e);
      release();
      await holder;
      expect((error as { code?: string }).code).toMatch(/^SQLITE_BUSY/);
      // the holder's write was not disturbed, and the impatient store works once the lock is free
      expect((await impatient.transaction((tx) => tx.payments.get(pi)))?.id).toBe(pi);
    });

  if (h.dialect === 'postgres')
    it('retries a transaction that lost a deadlock, without duplicating its writes', async () => {
      const p1 = await newPayment(h.store);
      const p2 = await newPayment(h.store);
      const bothLocked = barrier(2);
      const attempts = { a: 0, b: 0 };
      const run = (name: 'a' | 'b', firstId: string, secondId: string) =>
        h.store.transaction(async (tx) => {
          attempts[name] += 1;
          await tx.payments.lockForUpdate(firstId);
          await tx.refunds.insert({
            requestId: `${firstId}-${name}`,
            paymentIntentId: firstId,
            amount: 1,
            status: 'queued',
            mode: 'sync',
          });
          if (attempts[name] === 1) await bothLocked(); // only the first round is forced into the deadlock
          await tx.payments.lockForUpdate(secondId);
          return name;
        });
      expect(await Promise.all([run('a', p1, p2), run('b', p2, p1)])).toEqual(['a', 'b']);
      expect(attempts.a + attempts.b).toBe(3); // one of them was the deadlock victim and ran again
      expect(await h.store.refunds.listForPaymentIntent(p1)).toHaveLength(1);
      expect(await h.store.refunds.listForPaymentIntent(p2)).toHaveLength(1);
    });

  const acceptOne = async (store: Store, piId: string): Promise<boolean> => {
    const requestId = uid('req');
    const accepted = await store.refunds.acceptAnnounced!(
      { requestId, owner: '', paymentIntentId: piId, amount: REFUND_AMOUNT, status: 'queued', mode: 'async' },
      { destination: 'requests', messageId: `${requestId}#accept`, payload: { request_key: requestId } },
    );
    return accepted !== null;
  };

  if (h.dialect === 'postgres')
    it(`${CONCURRENT} concurrent accepts on two pools, half of them one statement, never refund more than the payment`, async () => {
      const other = await h.openSibling();
      const pi = await newPayment(h.store);
      const results = await Promise.all(
        Array.from({ length: CONCURRENT }, (_, i) => {
          const store = i % 2 === 0 ? h.store : other;
          return i % 4 < 2 ? acceptOne(store, pi) : tryRefund(store, pi);
        }),
      );
      expect(results.filter(Boolean)).toHaveLength(expectedRefunds);
      expect(await h.store.refunds.sumCommitted(pi)).toBe(expectedRefunds * REFUND_AMOUNT);
      expect(await other.refunds.listForPaymentIntent(pi)).toHaveLength(expectedRefunds);
    });

  if (h.dialect === 'postgres')
    it('a one-statement accept waits for a transaction holding the payment, then counts its refund', async () => {
      const other = await h.openSibling();
      const pi = await newPayment(h.store);
      const first = await holdLock(h.store, async (tx) => {
        await tx.refunds.lockForAccept(uid('req'), pi);
        await tx.refunds.insert(almostAll(pi));
      });
      let done = false;
      const second = acceptOne(other, pi).finally(() => (done = true));
      await sleep(50);
      expect(done).toBe(false); // still waiting for the first transaction's lock
      first.release();
      await first.committed;
      // Had it read the refunds as of its own start, 150 would have fitted in the 1,000.
      expect(await second).toBe(false);
      expect(await h.store.refunds.sumCommitted(pi)).toBe(PAYMENT_AMOUNT - REFUND_AMOUNT + 1);
    });

  if (h.dialect === 'postgres')
    it('both accept paths count a refund committed while they waited, whatever isolation the URL asks for', async () => {
      // A server, role or URL default of REPEATABLE READ would make the sum after the lock read the snapshot
      // taken before the wait, and miss the refund that the lock holder committed.
      const url = new URL(h.options.url);
      url.searchParams.set('options', '-c default_transaction_isolation=repeatable\\ read');
      const other = await h.openSibling({ url: url.toString() });
      const viaTransaction = async (piId: string) =>
        other.transaction(async (tx) => (await tx.refunds.lockForAccept(uid('req'), piId)).committed);
      for (const second of [viaTransaction, (piId: string) => acceptOne(other, piId)]) {
        const pi = await newPayment(h.store);
        const first = await holdLock(h.store, async (tx) => {
          await tx.refunds.lockForAccept(uid('req'), pi);
          await tx.refunds.insert(almostAll(pi));
        });
        const result = second(pi);
        await sleep(50);
        first.release();
        await first.committed;
        // The transactional read sees the first refund; the one-statement accept finds no room for 150.
        expect(await result).toBe(second === viaTransaction ? PAYMENT_AMOUNT - REFUND_AMOUNT + 1 : false);
        expect(await h.store.refunds.sumCommitted(pi)).toBe(PAYMENT_AMOUNT - REFUND_AMOUNT + 1);
      }
    });

  if (h.dialect === 'postgres')
    it('a one-statement accept that waited reads the payment row as the lock holder left it', async () => {
      const other = await h.openSibling();
      const changes: [string, { status: string; amount: number }, boolean][] = [
        ['status no longer succeeded', { status: 'canceled', amount: PAYMENT_AMOUNT }, false],
        ['amount cut below the refund', { status: 'succeeded', amount: REFUND_AMOUNT - 1 }, false],
        ['amount raised', { status: 'succeeded', amount: PAYMENT_AMOUNT * 2 }, true],
      ];
      for (const [label, change, accepted] of changes) {
        const pi = await newPayment(h.store);
        const first = await holdLock(h.store, async (tx) => {
          await tx.payments.lockForUpdate(pi);
          await tx.payments.upsert({ id: pi, kind: 'payment_intent', currency: 'usd', ...change });
        });
        const second = acceptOne(other, pi);
        await sleep(50);
        first.release();
        await first.committed;
        expect(await second, label).toBe(accepted);
        expect(await h.store.refunds.sumCommitted(pi), label).toBe(accepted ? REFUND_AMOUNT : 0);
      }
    });
});

import { expect, it } from 'vitest';
import { DuplicateKeyError, REFUND_STATUSES, canAdvanceRefund } from '../../src/store/index.js';
import type { NewRefund, RefundStatus } from '../../src/store/index.js';
import { ISO, describeStore, uid } from './harness.js';

const refund = (over: Partial<NewRefund> = {}): NewRefund => ({
  requestId: uid('req'),
  owner: 'acme',
  paymentIntentId: uid('pi'),
  amount: 500,
  status: 'queued',
  mode: 'async',
  ...over,
});

describeStore('refunds repository', (h) => {
  it('inserts and reads a refund by request id, owner and Stripe id', async () => {
    const r = refund({
      currency: 'eur',
      reason: 'requested_by_customer',
      stripeRefundId: uid('re'),
      requestHash: 'abc123',
      metadata: { ticket: 'T-1' },
      mode: 'sync',
      status: 'pending',
    });
    const inserted = await h.store.refunds.insert(r);
    expect(inserted).toMatchObject({
      requestId: r.requestId,
      owner: 'acme',
      paymentIntentId: r.paymentIntentId,
      amount: 500,
      currency: 'eur',
      reason: 'requested_by_customer',
      status: 'pending',
      stripeRefundId: r.stripeRefundId,
      failureReason: null,
      attempts: 0,
      mode: 'sync',
      requestHash: 'abc123',
      metadata: { ticket: 'T-1' },
    });
    expect(inserted.createdAt).toMatch(ISO);
    expect(await h.store.refunds.get(r.requestId)).toEqual(inserted);
    expect(await h.store.refunds.getForOwner(r.requestId, 'acme')).toEqual(inserted);
    expect(await h.store.refunds.getForOwner(r.requestId, 'other')).toBeNull();
    expect(await h.store.refunds.getByStripeId(r.stripeRefundId!)).toEqual(inserted);
    expect(await h.store.refunds.get(uid('req'))).toBeNull();
    expect(await h.store.refunds.getByStripeId(uid('re'))).toBeNull();
  });

  it('throws DuplicateKeyError for a taken request_id and for a taken stripe_refund_id', async () => {
    const r = refund({ stripeRefundId: uid('re') });
    await h.store.refunds.insert(r);

    const sameRequest = await h.store.refunds
      .insert(refund({ requestId: r.requestId }))
      .catch((e: unknown) => e);
    expect(sameRequest).toBeInstanceOf(DuplicateKeyError);
    expect((sameRequest as DuplicateKeyError).table).toBe('refunds');
    expect((sameRequest as DuplicateKeyError).columns).toEqual(['request_id']);

    const sameStripe = await h.store.refunds
      .insert(refund({ stripeRefundId: r.stripeRefundId }))
      .catch((e: unknown) => e);
    expect(sameStripe).toBeInstanceOf(DuplicateKeyError);
    expect((sameStripe as DuplicateKeyError).columns).toEqual(['stripe_refund_id']);

    // patch hits the same unique key
    const other = await h.store.refunds.insert(refund());
    await expect(
      h.store.refunds.patch(other.requestId, { stripeRefundId: r.stripeRefundId }),
    ).rejects.toBeInstanceOf(DuplicateKeyError);
    // Several refunds without a Stripe id yet are fine (NULLs do not collide).
    await h.store.refunds.insert(refund());
    await h.store.refunds.insert(refund());
  });

  it('advance only moves forward, ignoring older and repeated statuses', async () => {
    const r = await h.store.refunds.insert(refund());
    const steps: [RefundStatus, boolean][] = [
      ['processing', true],
      ['queued', false],
      ['processing', false],
      ['pending', true],
      ['requires_action', true],
      ['pending', true],
      ['pending', false],
      ['processing', false],
      ['succeeded', true],
      ['canceled', false],
      ['pending', false],
      // Stripe's one move out of succeeded: the refund fails later (the bank returned it). Then nothing moves.
      ['failed', true],
      ['canceled', false],
      ['succeeded', false],
      ['pending', false],
    ];
    for (const [to, changed] of steps) {
      expect([to, await h.store.refunds.advance(r.requestId, { status: to })]).toEqual([to, changed]);
    }
    expect((await h.store.refunds.get(r.requestId))?.status).toBe('failed');
    expect(await h.store.refunds.advance(uid('req'), { status: 'succeeded' })).toBe(false);
  });

  it('advance obeys the rank table for every pair of statuses', async () => {
    for (const from of REFUND_STATUSES) {
      for (const to of REFUND_STATUSES) {
        const r = await h.store.refunds.insert(refund({ status: from }));
        const changed = await h.store.refunds.advance(r.requestId, { status: to });
        const expected = canAdvanceRefund(from, to);
        expect([from, to, changed]).toEqual([from, to, expected]);
        expect((await h.store.refunds.get(r.requestId))?.status).toBe(expected ? to : from);
      }
    }
  });

  it('advance sets the other fields only when the status moves', async () => {
    const r = await h.store.refunds.insert(refund({ status: 'processing' }));
    const reId = uid('re');
    expect(
      await h.store.refunds.advance(r.requestId, {
        status: 'failed',
        failureReason: 'expired_or_canceled_card',
        stripeRefundId: reId,
      }),
    ).toBe(true);
    expect(await h.store.refunds.advance(r.requestId, { status: 'succeeded', failureReason: 'late' })).toBe(
      false,
    );
    const got = await h.store.refunds.get(r.requestId);
    expect(got).toMatchObject({
      status: 'failed',
      failureReason: 'expired_or_canceled_card',
      stripeRefundId: reId,
    });
  });

  it('concurrent advances settle on the furthest status', async () => {
    const r = await h.store.refunds.insert(refund());
    const order: RefundStatus[] = [
      'succeeded',
      'processing',
      'pending',
      'queued',
      'requires_action',
      'processing',
    ];
    const results = await Promise.all(
      order.map((status) => h.store.refunds.advance(r.requestId, { status })),
    );
    expect((await h.store.refunds.get(r.requestId))?.status).toBe('succeeded');
    // once succeeded nothing else may move it
    expect(results.filter(Boolean).length).toBeGreaterThanOrEqual(1);
    expect(await h.store.refunds.advance(r.requestId, { status: 'pending' })).toBe(false);
  });

  it('patch sets non-status fields; incrementAttempts counts up', async () => {
    const r = await h.store.refunds.insert(refund());
    const reId = uid('re');
    expect(
      await h.store.refunds.patch(r.requestId, { stripeRefundId: reId, failureReason: 'x', currency: 'usd' }),
    ).toBe(true);
    expect(await h.store.refunds.incrementAttempts(r.requestId)).toBe(1);
    expect(await h.store.refunds.incrementAttempts(r.requestId)).toBe(2);
    expect(await h.store.refunds.get(r.requestId)).toMatchObject({
      stripeRefundId: reId,
      failureReason: 'x',
      currency: 'usd',
      attempts: 2,
      status: 'queued',
    });
    expect(await h.store.refunds.patch(r.requestId, {})).toBe(true);
    // The same values again: the refund exists, and nothing changed, its updated_at included.
    const unchanged = (await h.store.refunds.get(r.requestId))!;
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await h.store.refunds.patch(r.requestId, { stripeRefundId: reId, currency: 'usd' })).toBe(true);
    expect(await h.store.refunds.get(r.requestId)).toEqual(unchanged);
    expect(await h.store.refunds.patch(r.requestId, { failureReason: null })).toBe(true);
    expect((await h.store.refunds.get(r.requestId))!.updatedAt).not.toBe(unchanged.updatedAt);
    expect(await h.store.refunds.patch(uid('req'), { attempts: 3 })).toBe(false);
    expect(await h.store.refunds.incrementAttempts(uid('req'))).toBeNull();
  });

  it('sumCommitted counts in-flight and succeeded refunds but not failed or canceled ones', async () => {
    const pi = uid('pi');
    expect(await h.store.refunds.sumCommitted(pi)).toBe(0);
    const amounts: Record<RefundStatus, number> = {
      queued: 1,
      processing: 10,
      pending: 100,
      requires_action: 1_000,
      succeeded: 10_000,
      failed: 100_000,
      canceled: 1_000_000,
    };
    for (const status of REFUND_STATUSES) {
      await h.store.refunds.insert(refund({ paymentIntentId: pi, status, amount: amounts[status] }));
    }
    await h.store.refunds.insert(refund({ amount: 7 })); // another payment
    expect(await h.store.refunds.sumCommitted(pi)).toBe(11_111);

    const list = await h.store.refunds.listForPaymentIntent(pi);
    expect(list.map((r) => r.status).sort()).toEqual([...REFUND_STATUSES].sort());
  });

  it('lockForAccept finds a replay, the payment and what its refunds hold, only inside a transaction', async () => {
    const pi = uid('pi');
    const accept = (requestId: string, piId = pi) =>
      h.store.transaction((tx) => tx.refunds.lockForAccept(requestId, piId));

    // Neither a payment row nor a refund yet.
    expect(await accept(uid('req'))).toEqual({ existing: null, payment: null, committed: 0 });

    // A refund recorded under the request id is found even when its payment has no row.
    const early = await h.store.refunds.insert(
      refund({ paymentIntentId: pi, amount: 3, status: 'succeeded' }),
    );
    expect(await accept(early.requestId)).toMatchObject({ existing: early, payment: null, committed: 0 });

    await h.store.payments.insert({
      id: pi,
      kind: 'payment_intent',
      owner: 'acme',
      amount: 50_000,
      currency: 'usd',
      status: 'succeeded',
    });
    // Every other status once (PostgreSQL sums them in a function of its own, migration 0005, so the
    // rule is checked here as well as in sumCommitted's test).
    const others = REFUND_STATUSES.filter((status) => status !== 'succeeded');
    for (const [i, status] of others.entries()) {
      await h.store.refunds.insert(refund({ paymentIntentId: pi, status, amount: 10 ** (i + 1) }));
    }
    await h.store.refunds.insert(refund({ amount: 7 })); // another payment's refund
    const fresh = await accept(uid('req'));
    expect(fresh.existing).toBeNull();
    expect(fresh.payment).toEqual(await h.store.payments.get(pi));
    // 3 (succeeded) + 10 (queued) + 100 (processing) + 1,000 (pending) + 10,000 (requires_action);
    // failed and canceled hold nothing
    expect(others).toEqual(['queued', 'processing', 'pending', 'requires_action', 'failed', 'canceled']);
    expect(fresh.committed).toBe(11_113);
    expect(fresh.committed).toBe(await h.store.refunds.sumCommitted(pi));

    // A replay: the recorded refund (all its fields) beside the payment row.
    const replay = await accept(early.requestId);
    expect(replay.existing).toEqual(early);
    expect(replay.payment?.id).toBe(pi);

    // A request id recorded for another payment is still returned (the caller answers the conflict).
    const elsewhere = await h.store.refunds.insert(refund({ metadata: { k: 'v' } }));
    expect((await accept(elsewhere.requestId)).existing).toEqual(elsewhere);

    await expect(h.store.refunds.lockForAccept(uid('req'), pi)).rejects.toThrow(/store.transaction/);
  });

  it('countByStatus reports every status; listByStatus returns the oldest-updated first', async () => {
    const db = await h.open(h.newDatabase());
    const empty = await db.refunds.countByStatus();
    expect(empty).toEqual(Object.fromEntries(REFUND_STATUSES.map((s) => [s, 0])));

    // Past creation times make the later incrementAttempts the newest update, whatever the clock.
    const a = await db.refunds.insert(refund({ status: 'queued', createdAt: '2020-01-01T00:00:01Z' }));
    const b = await db.refunds.insert(refund({ status: 'processing', createdAt: '2020-01-01T00:00:02Z' }));
    const c = await db.refunds.insert(refund({ status: 'queued', createdAt: '2020-01-01T00:00:03Z' }));
    await db.refunds.insert(refund({ status: 'succeeded' }));
    await db.refunds.incrementAttempts(a.requestId); // a is now the most recently updated

    expect(await db.refunds.countByStatus()).toMatchObject({
      queued: 2,
      processing: 1,
      succeeded: 1,
      failed: 0,
    });
    // Only the statuses asked for (the metrics gauge asks for those still in flight).
    expect(await db.refunds.countByStatus(['queued', 'processing', 'pending'])).toEqual({
      queued: 2,
      processing: 1,
      pending: 0,
    });
    expect(await db.refunds.countByStatus([])).toEqual({});
    const stuck = await db.refunds.listByStatus(['queued', 'processing'], 10);
    expect(stuck.map((r) => r.requestId)).toEqual([b.requestId, c.requestId, a.requestId]);
    expect(await db.refunds.listByStatus(['queued', 'processing'], 1)).toHaveLength(1);
    expect(await db.refunds.listByStatus([], 10)).toEqual([]);
  });

  it('listCreatedSince pages in (createdAt, requestId) order', async () => {
    const db = await h.open(h.newDatabase());
    const t = '2031-01-01T00:00:00.000Z';
    await db.refunds.insert(refund({ requestId: 'r0', createdAt: '2030-12-31T23:59:59.999Z' }));
    for (const id of ['r3', 'r1', 'r2']) await db.refunds.insert(refund({ requestId: id, createdAt: t }));
    await db.refunds.insert(refund({ requestId: 'r4', createdAt: '2031-01-02T00:00:00Z' }));

    const first = await db.refunds.listCreatedSince(t, 2);
    expect(first.map((r) => r.requestId)).toEqual(['r1', 'r2']);
    const next = await db.refunds.listCreatedSince(first[1]!.createdAt, 2, first[1]!.requestId);
    expect(next.map((r) => r.requestId)).toEqual(['r3', 'r4']);
  });

  it('rejects an unknown status instead of storing it', async () => {
    await expect(h.store.refunds.insert(refund({ status: 'refunded' as RefundStatus }))).rejects.toThrow(
      /status/,
    );
    const r = await h.store.refunds.insert(refund());
    await expect(h.store.refunds.advance(r.requestId, { status: 'done' as RefundStatus })).rejects.toThrow(
      /status/,
    );
  });
});

describeStore('an attempt taken back (its Stripe call was never made)', (h) => {
  it('a first attempt: queued again with no attempt; a later one: one attempt fewer, still processing', async () => {
    const r = await h.store.refunds.insert(refund());
    const first = await h.store.refunds.beginAttempt(r.requestId);
    expect(await h.store.refunds.takeBackAttempt(r.requestId, first!.attempts)).toBe(true);
    expect(await h.store.refunds.get(r.requestId)).toMatchObject({ status: 'queued', attempts: 0 });

    await h.store.refunds.beginAttempt(r.requestId);
    const second = await h.store.refunds.beginAttempt(r.requestId);
    expect(await h.store.refunds.takeBackAttempt(r.requestId, second!.attempts)).toBe(true);
    expect(await h.store.refunds.get(r.requestId)).toMatchObject({ status: 'processing', attempts: 1 });

    // A refund handed over by POST /refund starts processing with its first attempt counted: it stays processing.
    const handed = await h.store.refunds.insert(refund({ mode: 'sync', status: 'processing', attempts: 1 }));
    const next = await h.store.refunds.beginAttempt(handed.requestId);
    expect(await h.store.refunds.takeBackAttempt(handed.requestId, next!.attempts)).toBe(true);
    expect(await h.store.refunds.get(handed.requestId)).toMatchObject({ status: 'processing', attempts: 1 });
  });

  it('changes nothing once another attempt began, or Stripe answered', async () => {
    const r = await h.store.refunds.insert(refund());
    const mine = await h.store.refunds.beginAttempt(r.requestId);
    await h.store.refunds.beginAttempt(r.requestId);
    expect(await h.store.refunds.takeBackAttempt(r.requestId, mine!.attempts)).toBe(false);
    expect(await h.store.refunds.get(r.requestId)).toMatchObject({ status: 'processing', attempts: 2 });

    const s = await h.store.refunds.insert(refund());
    const begun = await h.store.refunds.beginAttempt(s.requestId);
    await h.store.refunds.patch(s.requestId, { stripeRefundId: uid('re') });
    expect(await h.store.refunds.takeBackAttempt(s.requestId, begun!.attempts)).toBe(false);
    expect(await h.store.refunds.get(s.requestId)).toMatchObject({ status: 'processing', attempts: 1 });
  });
});

describeStore('a synchronous refund taken over (beginAttempt with the attempts its retry read)', (h) => {
  const idle = () =>
    h.store.refunds.insert(
      refund({ mode: 'sync', status: 'processing', attempts: 1, createdAt: '2020-01-01' }),
    );

  it('begins the attempt once: a second retry that read the same row gets null and changes nothing', async () => {
    const r = await idle();
    const first = await h.store.refunds.beginAttempt(r.requestId, r.attempts);
    expect(first).toMatchObject({ status: 'processing', attempts: 2 });
    expect(Date.parse(first!.updatedAt)).toBeGreaterThan(Date.parse(r.updatedAt));
    // The other retry read the row before the first began its attempt: its expectation is stale.
    expect(await h.store.refunds.beginAttempt(r.requestId, r.attempts)).toBeNull();
    expect(await h.store.refunds.get(r.requestId)).toEqual(first);
  });

  it('begins nothing once Stripe answered, the refund settled, or it is not processing', async () => {
    const answered = await idle();
    await h.store.refunds.patch(answered.requestId, { stripeRefundId: uid('re') });
    expect(await h.store.refunds.beginAttempt(answered.requestId, answered.attempts)).toBeNull();

    const failed = await idle();
    await h.store.refunds.giveUp(failed.requestId, 'card_declined');
    expect(await h.store.refunds.beginAttempt(failed.requestId, failed.attempts)).toBeNull();

    const queued = await h.store.refunds.insert(refund());
    expect(await h.store.refunds.beginAttempt(queued.requestId, queued.attempts)).toBeNull();
    expect(await h.store.refunds.get(queued.requestId)).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await h.store.refunds.beginAttempt(uid('req'), 1)).toBeNull();
  });

  it('without an expectation begins an attempt as the worker always has, whoever began one before', async () => {
    const r = await idle();
    await h.store.refunds.beginAttempt(r.requestId, r.attempts);
    expect(await h.store.refunds.beginAttempt(r.requestId)).toMatchObject({ attempts: 3 });
  });
});

describeStore('a worker attempt settled together with its outcome message', (h) => {
  const settleWithId = (
    current: Awaited<ReturnType<typeof h.store.refunds.beginAttempt>>,
    stripeId: string,
    availableAt?: string,
  ) =>
    h.store.refunds.settleAttemptAnnounced(
      current!,
      { status: 'succeeded', stripeRefundId: stripeId, currency: 'usd', failureReason: null },
      (settled) => ({
        destination: 'responses',
        routingKey: 'responses',
        messageId: `${settled.requestId}#${settled.status}#${settled.updatedAt}`,
        payload: { request_id: settled.requestId, status: settled.status, refund_id: settled.stripeRefundId },
        ...(availableAt === undefined ? {} : { availableAt }),
      }),
    );
  const settle = async (
    current: Awaited<ReturnType<typeof h.store.refunds.beginAttempt>>,
    stripeId: string,
  ) => (await settleWithId(current, stripeId))?.refund ?? null;
  const messagesFor = async (requestId: string) =>
    (await h.store.outbox.claimBatch(10_000, new Date(Date.now() + 60_000))).filter((m) =>
      m.messageId.startsWith(`${requestId}#`),
    );

  it('moves the row and writes exactly one message describing the row as it now reads', async () => {
    const r = await h.store.refunds.insert(refund());
    const current = await h.store.refunds.beginAttempt(r.requestId);
    expect(current).toMatchObject({ status: 'processing', attempts: 1 });
    const stripeId = uid('re');
    const settled = await settle(current, stripeId);
    expect(settled).toMatchObject({
      status: 'succeeded',
      stripeRefundId: stripeId,
      currency: 'usd',
      attempts: 1,
    });
    expect(await h.store.refunds.get(r.requestId)).toEqual(settled);
    const messages = await messagesFor(r.requestId);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      destination: 'responses',
      messageId: `${r.requestId}#succeeded#${settled!.updatedAt}`,
      payload: { request_id: r.requestId, status: 'succeeded', refund_id: stripeId },
    });
  });

  it('answers the message id, and writes the message leased until the given availableAt', async () => {
    const r = await h.store.refunds.insert(refund());
    const current = await h.store.refunds.beginAttempt(r.requestId);
    const settled = await settleWithId(current, uid('re'), new Date(Date.now() + 60_000).toISOString());
    expect(settled?.refund.status).toBe('succeeded');
    expect(await h.store.outbox.claimBatch(10_000, new Date())).not.toContainEqual(
      expect.objectContaining({ id: settled!.outboxId }),
    );
    expect(await h.store.outbox.release([settled!.outboxId])).toBe(1);
    expect(await messagesFor(r.requestId)).toEqual([
      expect.objectContaining({
        id: settled!.outboxId,
        messageId: `${r.requestId}#succeeded#${settled!.refund.updatedAt}`,
      }),
    ]);
  });

  it('of concurrent settlements exactly one moves the row and writes a message; the rest change nothing', async () => {
    const r = await h.store.refunds.insert(refund());
    const current = await h.store.refunds.beginAttempt(r.requestId);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => settle(current, `re_${r.requestId}_${i}`)),
    );
    const winners = results.filter((x) => x !== null);
    expect(winners).toHaveLength(1);
    expect(await h.store.refunds.get(r.requestId)).toEqual(winners[0]);
    expect(await messagesFor(r.requestId)).toHaveLength(1);
    // Already settled: a late attempt neither moves it nor announces anything.
    const pending = await h.store.outbox.pendingCount();
    expect(await settle(current, uid('re'))).toBeNull();
    expect(await h.store.outbox.pendingCount()).toBe(pending);
    expect(await h.store.refunds.get(r.requestId)).toEqual(winners[0]);
  });
});

describeStore('an accepted refund written together with the message that queues it', (h) => {
  const queueMessage = (requestId: string) => ({
    destination: 'requests',
    routingKey: 'requests',
    messageId: `${requestId}#accept`,
    payload: { request_key: requestId },
    headers: { 'x-request-id': `http-${requestId}` },
  });
  const messagesFor = async (db: typeof h.store, requestId: string) =>
    (await db.outbox.claimBatch(10_000, new Date(Date.now() + 60_000))).filter((m) =>
      m.messageId.startsWith(`${requestId}#`),
    );

  it('stores the refund as insert does, and exactly one message, available from the refund creation', async () => {
    const db = await h.open(h.newDatabase());
    const r = refund({ status: 'queued', mode: 'async', metadata: { order: '42' } });
    const { refund: stored, outboxId } = await db.refunds.insertAnnounced(r, queueMessage(r.requestId));
    expect(stored).toMatchObject({
      requestId: r.requestId,
      owner: 'acme',
      amount: r.amount,
      status: 'queued',
      mode: 'async',
      metadata: { order: '42' },
      attempts: 0,
    });
    expect(stored.createdAt).toMatch(ISO);
    expect(await db.refunds.get(r.requestId)).toEqual(stored);
    const messages = await messagesFor(db, r.requestId);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      id: outboxId,
      destination: 'requests',
      routingKey: 'requests',
      messageId: `${r.requestId}#accept`,
      payload: { request_key: r.requestId },
      headers: { 'x-request-id': `http-${r.requestId}` },
      createdAt: stored.createdAt,
      attempts: 0,
    });
  });

  it('writes the message leased until the given availableAt: no claim takes it before, release ends the lease', async () => {
    const db = await h.open(h.newDatabase());
    const r = refund({ status: 'queued', mode: 'async' });
    const leasedUntil = new Date(Date.now() + 60_000).toISOString();
    const { outboxId } = await db.refunds.insertAnnounced(r, {
      ...queueMessage(r.requestId),
      availableAt: leasedUntil,
    });
    expect(await db.outbox.claimBatch(10, new Date())).toEqual([]);
    expect(await db.outbox.pendingCount()).toBe(1);
    expect(await db.outbox.release([outboxId])).toBe(1);
    const [claimed, ...rest] = await db.outbox.claimBatch(10, new Date());
    expect(rest).toEqual([]);
    expect(claimed).toMatchObject({ id: outboxId, messageId: `${r.requestId}#accept` });
  });

  it('a taken request id raises DuplicateKeyError and writes no second message', async () => {
    const db = await h.open(h.newDatabase());
    const r = refund({ status: 'queued', mode: 'async' });
    const { refund: first } = await db.refunds.insertAnnounced(r, queueMessage(r.requestId));
    await expect(
      db.refunds.insertAnnounced(
        { ...r, amount: r.amount + 1 },
        { ...queueMessage(r.requestId), messageId: 'other' },
      ),
    ).rejects.toBeInstanceOf(DuplicateKeyError);
    expect(await db.refunds.get(r.requestId)).toEqual(first);
    expect(await messagesFor(db, r.requestId)).toHaveLength(1);
    expect(
      (await db.outbox.claimBatch(100, new Date(Date.now() + 60_000))).map((m) => m.messageId),
    ).not.toContain('other');
  });

  it('a taken message id fails the whole write: no refund row is left behind', async () => {
    const db = await h.open(h.newDatabase());
    const taken = refund({ status: 'queued', mode: 'async' });
    await db.outbox.add({ destination: 'requests', messageId: `${taken.requestId}#accept`, payload: {} });
    await expect(db.refunds.insertAnnounced(taken, queueMessage(taken.requestId))).rejects.toBeInstanceOf(
      DuplicateKeyError,
    );
    expect(await db.refunds.get(taken.requestId)).toBeNull();
  });

  it('rolls back with the transaction it runs in', async () => {
    const db = await h.open(h.newDatabase());
    const r = refund({ status: 'queued', mode: 'async' });
    await expect(
      db.transaction(async (tx) => {
        await tx.refunds.insertAnnounced(r, queueMessage(r.requestId));
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await db.refunds.get(r.requestId)).toBeNull();
    expect(await db.outbox.pendingCount()).toBe(0);
  });
});

describeStore('an async refund accepted by one statement (PostgreSQL)', (h) => {
  if (h.dialect !== 'postgres') {
    it('is absent on SQLite, whose accept runs as a transaction of the group commit', () => {
      expect(h.store.refunds.acceptAnnounced).toBeUndefined();
    });
    return;
  }
  const queueMessage = (requestId: string) => ({
    destination: 'requests',
    routingKey: 'requests',
    messageId: `${requestId}#accept`,
    payload: { request_key: requestId },
    headers: { 'x-request-id': `http-${requestId}` },
  });
  const accept = (
    db: typeof h.store,
    paymentIntentId: string,
    over: { amount?: number | null; owner?: string; requestId?: string } = {},
  ) => {
    const requestId = over.requestId ?? uid('req');
    return db.refunds.acceptAnnounced!(
      {
        requestId,
        owner: over.owner ?? 'acme',
        paymentIntentId,
        amount: over.amount === undefined ? 300 : over.amount,
        reason: 'requested_by_customer',
        status: 'queued',
        mode: 'async',
        requestHash: 'h1',
        metadata: { order: '7' },
      },
      queueMessage(requestId),
    );
  };
  const payment = async (
    db: typeof h.store,
    over: { status?: string; owner?: string; amount?: number } = {},
  ): Promise<string> => {
    const id = uid('pi');
    await db.payments.insert({
      id,
      kind: 'payment_intent',
      owner: over.owner ?? 'acme',
      amount: over.amount ?? 1_000,
      currency: 'eur',
      status: over.status ?? 'succeeded',
    });
    return id;
  };

  it('writes the refund (the payment’s currency) and its message when the refund fits', async () => {
    const db = await h.open(h.newDatabase());
    const pi = await payment(db);
    const accepted = await accept(db, pi);
    expect(accepted).not.toBeNull();
    const { refund: stored, outboxId } = accepted!;
    expect(stored).toMatchObject({
      owner: 'acme',
      paymentIntentId: pi,
      amount: 300,
      currency: 'eur',
      reason: 'requested_by_customer',
      status: 'queued',
      mode: 'async',
      attempts: 0,
      requestHash: 'h1',
      metadata: { order: '7' },
      stripeRefundId: null,
    });
    expect(stored.createdAt).toMatch(ISO);
    expect(await db.refunds.get(stored.requestId)).toEqual(stored);
    const [message, ...rest] = await db.outbox.claimBatch(10, new Date(Date.now() + 60_000));
    expect(rest).toEqual([]);
    expect(message).toMatchObject({
      id: outboxId,
      messageId: `${stored.requestId}#accept`,
      payload: { request_key: stored.requestId },
      headers: { 'x-request-id': `http-${stored.requestId}` },
      createdAt: stored.createdAt,
    });
    expect(await db.refunds.sumCommitted(pi)).toBe(300);
  });

  it('without an amount refunds what is left, and then nothing more', async () => {
    const db = await h.open(h.newDatabase());
    const pi = await payment(db);
    expect((await accept(db, pi, { amount: 250 }))?.refund.amount).toBe(250);
    expect((await accept(db, pi, { amount: null }))?.refund.amount).toBe(750);
    expect(await accept(db, pi, { amount: null })).toBeNull();
    expect(await accept(db, pi, { amount: 1 })).toBeNull();
    expect(await db.refunds.sumCommitted(pi)).toBe(1_000);
  });

  it('writes nothing and answers null whenever the transactional check has something to say', async () => {
    const db = await h.open(h.newDatabase());
    const pi = await payment(db);
    const replayed = uid('req');
    expect(await accept(db, pi, { requestId: replayed, amount: 100 })).not.toBeNull();
    const before = await db.outbox.pendingCount();

    const cases: [string, Promise<unknown>][] = [
      ['no payment row', accept(db, uid('pi'))],
      ['payment not succeeded', payment(db, { status: 'processing' }).then((id) => accept(db, id))],
      ['payment of another owner', payment(db, { owner: 'other' }).then((id) => accept(db, id))],
      ['request id taken (a replay)', accept(db, pi, { requestId: replayed, amount: 100 })],
      ['amount over what is left', accept(db, pi, { amount: 901 })],
    ];
    for (const [label, result] of cases) expect(await result, label).toBeNull();
    expect(await db.outbox.pendingCount()).toBe(before);
    expect(await db.refunds.sumCommitted(pi)).toBe(100);
    expect(await db.refunds.listForPaymentIntent(pi)).toHaveLength(1);
  });

  it('a taken message id fails the whole statement: no refund row is left behind', async () => {
    const db = await h.open(h.newDatabase());
    const pi = await payment(db);
    const requestId = uid('req');
    await db.outbox.add({ destination: 'requests', messageId: `${requestId}#accept`, payload: {} });
    await expect(accept(db, pi, { requestId })).rejects.toBeInstanceOf(DuplicateKeyError);
    expect(await db.refunds.get(requestId)).toBeNull();
  });
});

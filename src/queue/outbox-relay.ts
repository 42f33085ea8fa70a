/**
 * Transactional outbox relay: moves rows written in the same transaction as a ledger change onto the
 * broker, and marks them sent only after the broker confirmed them. If the broker is down the rows
 * wait; nothing accepted is lost, and a row published twice is harmless because consumers are idempotent.
 */
import type { Logger } from 'pino';
import {
  failureLevel,
  outboxErrorText,
  type HeldLease,
  type NewOutboxMessage,
  type OutboxMessage,
  type Store,
} from '../store/index.js';
import { QueueError } from './errors.js';
import type { Broker, Destination } from './types.js';

export interface OutboxRelayOptions {
  store: Store;
  broker: Broker;
  logger: Logger;
  batchSize?: number;
  /** How long to sleep when there was nothing to send (a commit wakes it sooner through notify()). */
  idleMs?: number;
  /** First retry delay after a failed publish; doubles per attempt up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * When a row the broker's client refuses as it is (QueueError `invalid`: a message id or routing key over 255
   * bytes) is tried again (default 1 h). No retry will publish it, so it is not tried on the backoff schedule;
   * it stays unsent, counted by the outbox backlog and oldest-age metrics, until an operator repairs or deletes
   * it. Logged as an error the first time, at warn on each later try.
   */
  parkMs?: number;
  /**
   * Called once per row set aside as above: the first time, not at the hourly tries after (the row's last error
   * is then this same refusal). The backlog gauges cannot tell a row that waits for the broker from one that
   * never goes out, so the service counts these.
   */
  onUnpublishable?: (message: OutboxMessage) => void;
  /**
   * How long a claimed batch (or a handed-over row) is hidden from other relays (default 15 s): after a crash,
   * how long the rows wait. A row held longer (the broker slow to take or confirm messages, many rows queued in
   * memory) has its lease extended by another leaseMs once it has less than a third of it left, so that no
   * other relay publishes it too; see renewLeases.
   */
  leaseMs?: number;
  /** Bound on the final flush in stop() (default 5 s). */
  flushTimeoutMs?: number;
  /** How many handed-over rows may wait in memory before writers are told to write rows available (1000). */
  maxHandedOff?: number;
  /**
   * The body to publish for a row (default: its payload as stored). Rows outlive the version that wrote them (a
   * rolling update, a broker outage across an upgrade), so one may carry an older message shape; this brings it
   * to the contract's. A rejection fails the publish, which is tried again later.
   */
  bodyOf?: (message: OutboxMessage) => unknown;
}

/**
 * What a writer needs to hand its own outbox rows to this process's relay, skipping the claim that leases
 * them: ask leaseForHandOff() before the transaction, write the row with availableAt = now + that lease
 * (already leased to this relay, so no other relay takes it), and call handOff() after the commit. If the
 * process dies in between, the lease runs out and any relay's claim publishes the row.
 */
export interface OutboxHandOff {
  /**
   * The lease to write a row with, or null: write it available now and call notify() after the commit
   * (the relay is stopped, the broker is down, or enough rows are already waiting in memory). In ms from this
   * process's Date.now() (see leased): the relay's lease by the database's clock, so it is off from the lease by
   * as much as the clocks differ, and negative when this process's clock is ahead by more than the lease.
   */
  leaseForHandOff(): number | null;
  /** After the commit: publishes the row written with leaseForHandOff()'s lease. */
  handOff(message: OutboxMessage): void;
  /** Wakes the relay now: call after committing a transaction that added outbox rows. */
  notify(): void;
}

/**
 * `message` as a writer given a lease of `leaseMs` (by leaseForHandOff) stores it, available only once the
 * lease ends, and `handOff(id)`: what to pass to OutboxHandOff.handOff after the commit, given the row's id.
 */
export function leased(
  message: NewOutboxMessage,
  leaseMs: number,
): { message: NewOutboxMessage & { availableAt: string }; handOff(id: number): OutboxMessage } {
  const now = Date.now();
  const availableAt = new Date(now + leaseMs).toISOString();
  return {
    message: { ...message, availableAt },
    handOff: (id) => ({
      id,
      destination: message.destination,
      routingKey: message.routingKey ?? '',
      messageId: message.messageId,
      payload: message.payload,
      headers: message.headers ?? null,
      createdAt: new Date(now).toISOString(),
      availableAt,
      attempts: 0,
      sentAt: null,
      lastError: null,
    }),
  };
}

export interface OutboxRelay extends OutboxHandOff {
  start(): void;
  /**
   * Stops after the batch in progress, then publishes what is ready (bounded by flushTimeoutMs) so the
   * outcomes written by the last refunds leave with this process instead of waiting for another relay.
   */
  stop(): Promise<void>;
  /** Publishes until the outbox has nothing ready (tests, shutdown). */
  drain(timeoutMs?: number): Promise<void>;
}

const EXCHANGE_PREFIX = 'exchange:';
/**
 * A difference between this process's clock and the database's smaller than this is taken as none (a lease is
 * 15 s); a larger one is corrected for, and said once (see checkClock).
 */
const CLOCK_TOLERANCE_MS = 1_000;
/** How often the relay reads the database's clock again (an NTP step, a virtual machine resumed). */
const CLOCK_CHECK_MS = 60_000;
/**
 * How soon a read of the database's clock that failed after this process's clock was stepped, or before any read
 * answered (at start), is tried again.
 */
const CLOCK_RETRY_MS = 1_000;
/** Rows per lease-renewal statement (a relay holds up to maxHandedOff waiting, plus a batch in flight). */
const RENEW_BATCH = 500;

export function destinationOf(m: Pick<OutboxMessage, 'destination' | 'routingKey'>): Destination {
  return m.destination.startsWith(EXCHANGE_PREFIX)
    ? { exchange: m.destination.slice(EXCHANGE_PREFIX.length), routingKey: m.routingKey }
    : { queue: m.destination };
}

export function createOutboxRelay(opts: OutboxRelayOptions): OutboxRelay {
  const { store, broker } = opts;
  const log = opts.logger.child({ component: 'outbox-relay' });
  const batchSize = opts.batchSize ?? 200;
  const idleMs = opts.idleMs ?? 250;
  const backoffMs = opts.backoffMs ?? 500;
  const maxBackoffMs = opts.maxBackoffMs ?? 30_000;
  const parkMs = opts.parkMs ?? 3_600_000;
  const leaseMs = opts.leaseMs ?? 15_000;
  const flushTimeoutMs = opts.flushTimeoutMs ?? 5_000;
  const maxHandedOff = opts.maxHandedOff ?? 1_000;
  const { bodyOf, onUnpublishable } = opts;
  let running = false;
  let wake: (() => void) | null = null;
  let loop: Promise<void> | null = null;
  /** Rows handed over after their commit, already leased to this relay: published without a claim. */
  const handed: OutboxMessage[] = [];
  /** A claim is wanted before the idle timer says so: notify(), a full batch, the broker back. */
  let claimDue = true;
  /** When the last claim started (performance.now(): a wall-clock step does not stretch the poll). */
  let lastClaim = 0;
  /**
   * Rows published whose markSent failed. Without a second try they would be published again once their lease
   * ran out (15 s later): a duplicate of every message, request or outcome, on every database blip. Should the
   * store stay away longer than the lease, that still happens (harmless: consumers are idempotent).
   */
  const unmarked = new Set<number>();
  /**
   * The leases of the rows this relay holds until the store is told what became of them (handed over and waiting,
   * being published, published and not yet marked): row id → the availableAt its lease gave it. Kept so that a
   * row held longer than its lease (a broker slow to confirm, a backlog in memory) does not also go out through
   * another relay's claim: renewLeases extends them in time.
   */
  const leases = new Map<number, string>();
  /**
   * The lease a renewal's statement is moving a held row to, until the relay hears back (row id → the new
   * availableAt). Meanwhile the row may be under either lease: a failure recorded then goes by both (see leasesOf),
   * or it found the row under the new one and took that for another relay's takeover.
   */
  const renewingTo = new Map<number, string>();
  /** A third of the lease: what is left of one when it is extended (5 s by default). */
  const renewAheadMs = Math.floor(leaseMs / 3);
  /** Armed while rows are held, for when the first of their leases gets within renewAheadMs of its end. */
  let renewTimer: NodeJS.Timeout | null = null;
  /**
   * How far the database's clock is ahead of this process's (ms), once it differs by CLOCK_TOLERANCE_MS or more;
   * else 0. Leases are times written into rows and read by the relays of every process: each relay reads and
   * writes them by the database's clock (dbNow), or one whose clock is ahead would take every row the others hold
   * (their leases look ended to it), and one whose clock is behind would lease rows into the past.
   */
  let clockOffset = 0;
  /** When the database's clock was last read, or a read tried (performance.now() time); -Infinity: not yet. */
  let clockCheckedAt = -Infinity;
  /**
   * Date.now() - performance.now() when the database's clock was last read (null: not yet): moves when this
   * process's clock is stepped (see clockStepped). Kept from the last read that answered: after a failed one, the
   * step is still pending.
   */
  let wallVsMonotonic: number | null = null;
  /** A read that failed after a step, or before any answered, is tried again from then on (performance.now() time). */
  let clockRetryAt = -Infinity;
  /**
   * A read of the database's clock has failed and none has answered yet (at start, PostgreSQL not answering): how
   * far it is from this process's is not known at all. As after a step (see clockPending), the relay claims nothing,
   * and takes no hand-offs (their leases would be by this process's clock), until a read answers.
   */
  let firstReadFailed = false;
  /** When renewTimer fires (dbNow() time). */
  let renewAt = Infinity;
  /** A renewal is running: the timer firing meanwhile leaves the next one to it. */
  let renewing = false;

  /** Now, by the database's clock (see clockOffset and currentOffset). */
  function dbNow(): number {
    return Date.now() + currentOffset();
  }

  /**
   * How far the database's clock is ahead of this process's now. Once this process's clock was stepped and before a
   * read of the database's clock has answered since (it failed: a timeout, a lost connection), it is not known:
   * either the step set this clock right or wrong, and the database's went on as before (the offset moved by the
   * step), or it caught up with time this process did not see (a virtual machine resumed: the offset did not move).
   * Meanwhile the relay claims no rows (runBatch; a claim by a "now" too late takes rows other relays hold, and they
   * went out twice), and goes by the later of the two for the rest: leases written or renewed then end no sooner
   * than they should (at worst later: rows of a process that dies meanwhile wait longer for another relay).
   */
  function currentOffset(): number {
    if (!clockStepped()) return clockOffset;
    const stepMs = Date.now() - performance.now() - wallVsMonotonic!;
    return Math.max(clockOffset, clockOffset - stepMs);
  }

  /** Reads the database's clock; says when this process's differs from it by CLOCK_TOLERANCE_MS or more. */
  async function checkClock(): Promise<void> {
    clockCheckedAt = performance.now();
    const baseline = Date.now() - clockCheckedAt;
    let measured: number;
    try {
      measured = await store.clockOffsetMs();
    } catch (err) {
      if (wallVsMonotonic === null) {
        // Said once; the tries after (every second while the database does not answer) at debug only.
        const again = firstReadFailed;
        firstReadFailed = true;
        clockRetryAt = performance.now() + CLOCK_RETRY_MS;
        log[again ? 'debug' : failureLevel(err)](
          { err, retryInMs: CLOCK_RETRY_MS },
          "could not read the database's clock; the relay claims no outbox rows until it can",
        );
      } else if (clockStepped()) {
        // The offset is not known (see currentOffset): read again soon rather than CLOCK_CHECK_MS later.
        clockRetryAt = performance.now() + CLOCK_RETRY_MS;
        log[failureLevel(err)](
          { err, retryInMs: CLOCK_RETRY_MS },
          "could not read the database's clock after this process's was stepped; the relay claims no outbox rows until it can",
        );
      } else {
        log[failureLevel(err)](
          { err },
          "could not read the database's clock; the relay goes by the last reading",
        );
      }
      return;
    }
    wallVsMonotonic = baseline;
    clockRetryAt = -Infinity;
    firstReadFailed = false;
    const next = Math.abs(measured) >= CLOCK_TOLERANCE_MS ? measured : 0;
    if (next !== 0 && Math.abs(next - clockOffset) >= CLOCK_TOLERANCE_MS) {
      log.warn(
        { databaseAheadByMs: measured },
        "this process's clock differs from the database's: the outbox relay goes by the database's; set the clock right (NTP), as sweeps and timestamps go by this one",
      );
    } else if (next === 0 && clockOffset !== 0) {
      log.info({ databaseAheadByMs: measured }, "this process's clock agrees with the database's again");
    }
    clockOffset = next;
  }

  /**
   * This process's clock was stepped since the last reading (NTP, an operator, a virtual machine resumed): the
   * offset is read again before the next claim rather than up to CLOCK_CHECK_MS later.
   */
  function clockStepped(): boolean {
    return (
      wallVsMonotonic !== null &&
      Math.abs(Date.now() - performance.now() - wallVsMonotonic) >= CLOCK_TOLERANCE_MS
    );
  }

  /** The database's clock is not known now (a step not read since, or no read answered yet): claim nothing. */
  function clockPending(): boolean {
    return firstReadFailed || clockStepped();
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = null;
        resolve();
      }
      wake = done;
    });
  }

  function wakeUp(): void {
    wake?.();
  }

  /**
   * Notes that this relay holds `rows` under the leases they were written or claimed with. On the common path (a
   * row handed over and published within its lease) that is all: a Map entry, and at most one timer armed for
   * all the rows, which finds nothing to renew.
   */
  function hold(rows: readonly Pick<OutboxMessage, 'id' | 'availableAt'>[]): void {
    let first = Infinity;
    for (const m of rows) {
      leases.set(m.id, m.availableAt);
      first = Math.min(first, Date.parse(m.availableAt));
    }
    // Leases mostly come in order, but not always: a writer whose transaction took long hands over a row whose
    // lease ends sooner than that of one handed over before it.
    if (first - renewAheadMs < renewAt) armRenewal(first - renewAheadMs - dbNow());
  }

  /**
   * No longer holds `ids`: called before the statement that tells the store what became of them (sent, failed,
   * given back), so that a renewal running meanwhile, which then finds the lease changed, does not take that for
   * another relay's claim. Answers how to hold them again should that statement fail.
   */
  function letGo(ids: readonly number[]): () => void {
    const kept: HeldLease[] = [];
    for (const id of ids) {
      renewingTo.delete(id);
      const availableAt = leases.get(id);
      if (availableAt === undefined) continue;
      kept.push({ id, availableAt });
      leases.delete(id);
    }
    return () => hold(kept);
  }

  /**
   * The leases row `id` may be under while this relay holds it: the one it was given, and the one a renewal running
   * now is moving it to. Empty once no longer held.
   */
  function leasesOf(id: number): string[] {
    const held = leases.get(id);
    if (held === undefined) return [];
    const renewing = renewingTo.get(id);
    return renewing === undefined || renewing === held ? [held] : [held, renewing];
  }

  function armRenewal(delayMs: number): void {
    if (renewTimer !== null) clearTimeout(renewTimer);
    renewAt = dbNow() + Math.max(0, delayMs);
    renewTimer = setTimeout(() => void renewLeases(), Math.max(0, delayMs));
    renewTimer.unref();
  }

  function disarmRenewal(): void {
    if (renewTimer !== null) clearTimeout(renewTimer);
    renewTimer = null;
    renewAt = Infinity;
  }

  /**
   * Extends, in one statement per RENEW_BATCH rows, the leases of the held rows that have less than two thirds of
   * a lease left (those due now and those that would be within the next third: at most one renewal per third of
   * a lease), each only while it is still the lease this relay holds. A row whose lease is no longer its own was
   * taken by another relay once the lease ran out (this process stalled, or its clock is behind): one waiting in
   * memory is dropped, not published again; one already on its way to the broker cannot be called back.
   */
  async function renewLeases(): Promise<void> {
    disarmRenewal();
    if (renewing) return; // the running one arms the next
    renewing = true;
    try {
      await renewDue();
    } finally {
      renewing = false;
    }
  }

  async function renewDue(): Promise<void> {
    const now = dbNow();
    const due: HeldLease[] = [];
    for (const [id, availableAt] of leases) {
      if (Date.parse(availableAt) - now <= 2 * renewAheadMs) due.push({ id, availableAt });
    }
    try {
      for (let i = 0; i < due.length; i += RENEW_BATCH) await renewBatch(due.slice(i, i + RENEW_BATCH));
    } catch (err) {
      log[failureLevel(err)](
        { err, rows: due.length },
        'could not extend the leases of held outbox rows; once they end another relay may publish them too',
      );
      if (leases.size > 0) armRenewal(Math.min(1_000, renewAheadMs));
      return;
    }
    let first = Infinity;
    for (const availableAt of leases.values()) first = Math.min(first, Date.parse(availableAt));
    if (leases.size > 0) armRenewal(first - renewAheadMs - dbNow());
  }

  async function renewBatch(batch: readonly HeldLease[]): Promise<void> {
    const until = new Date(dbNow() + leaseMs).toISOString();
    for (const { id } of batch) renewingTo.set(id, until);
    // On an error the statement may still have moved the rows: they stay in renewingTo until let go or renewed again.
    const renewed = new Set(await store.outbox.extendLeases(batch, until));
    for (const { id } of batch) if (renewingTo.get(id) === until) renewingTo.delete(id);
    for (const { id, availableAt } of batch) {
      // Being marked sent or failed, or given back, meanwhile: no longer held.
      if (leases.get(id) !== availableAt) continue;
      if (renewed.has(id)) {
        leases.set(id, until);
        continue;
      }
      leases.delete(id);
      const waiting = handed.findIndex((m) => m.id === id);
      if (waiting >= 0) {
        const [m] = handed.splice(waiting, 1);
        log.warn(
          { outboxId: id, messageId: m!.messageId, destination: m!.destination },
          'outbox row taken by another relay once its lease ran out; dropped here, not published again',
        );
      } else if (!unmarked.has(id)) {
        log.warn(
          { outboxId: id },
          'outbox row taken by another relay once its lease ran out while this one was publishing it; it may go out twice',
        );
      }
    }
  }

  /** Publishes `batch`; marks each row sent, or failed with its next try after a backoff. */
  async function publishBatch(batch: readonly OutboxMessage[]): Promise<void> {
    try {
      await publishAndMark(batch);
    } finally {
      // Dropped from memory on an error (their leases run out and a claim takes them); the rows published and
      // not yet marked stay held until markUnmarked.
      letGo(batch.map((m) => m.id).filter((id) => !unmarked.has(id)));
    }
  }

  async function publishAndMark(batch: readonly OutboxMessage[]): Promise<void> {
    const results = await Promise.allSettled(
      batch.map(async (m) =>
        broker.publish(destinationOf(m), bodyOf ? await bodyOf(m) : m.payload, {
          messageId: m.messageId,
          ...(m.headers ? { headers: m.headers } : {}),
        }),
      ),
    );
    const sent = batch.filter((_, i) => results[i]!.status === 'fulfilled').map((m) => m.id);
    // The published rows first: a failure recorded first and cut off by a lost connection left them out of
    // `unmarked`, to be published again once their lease ran out.
    if (sent.length > 0) {
      const holdAgain = letGo(sent);
      try {
        await store.outbox.markSent(sent);
      } catch (err) {
        // Published, but the store did not hear it (the connection was lost): marked on the next turn instead
        // of being published again when the lease runs out.
        for (const id of sent) unmarked.add(id);
        holdAgain();
        throw err;
      }
    }
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') continue;
      const m = batch[i]!;
      const reason = r.reason instanceof Error ? r.reason.message : String(r.reason);
      // The failure is recorded under this relay's lease only: held past it (the process paused, the broker slow
      // to answer), the row may have been taken over by another relay, which is publishing it. Moving that relay's
      // lease to the retry time made the row claimable by a third one meanwhile, and published once more. A
      // renewal running meanwhile may have moved the row to this relay's next lease: that one is ours too.
      const held = leasesOf(m.id);
      letGo([m.id]);
      const ours = (retryAt: number) =>
        held.length > 0 && store.outbox.markFailed(m.id, reason, new Date(retryAt), held);
      if (r.reason instanceof QueueError && r.reason.code === 'invalid') {
        // Its last try was refused the same way: it was set aside then, and counted and logged as an error once
        // (the counter would otherwise climb by one an hour for a single row, and read as more and more rows).
        const again = m.lastError === outboxErrorText(reason);
        if (!(await ours(dbNow() + parkMs))) continue; // the relay that holds it now says so
        const fields = { outboxId: m.id, messageId: m.messageId, destination: m.destination, reason };
        if (again) {
          log.warn(
            { ...fields, attempts: m.attempts + 1, retryInMs: parkMs },
            'outbox row still cannot be published as it is; set aside again (repair or delete it)',
          );
          continue;
        }
        log.error(
          { ...fields, retryInMs: parkMs },
          'outbox row can never be published as it is; set aside (repair or delete it)',
        );
        onUnpublishable?.(m);
        continue;
      }
      const delay = Math.min(maxBackoffMs, backoffMs * 2 ** Math.min(m.attempts, 16));
      if (await ours(dbNow() + delay)) {
        log.warn(
          { messageId: m.messageId, destination: m.destination, reason },
          'publish failed; will retry',
        );
      } else {
        log.warn(
          { messageId: m.messageId, destination: m.destination, reason },
          'publish failed after another relay took the row over once its lease ran out; left to that relay',
        );
      }
    }
  }

  /** Marks the rows published while the store could not be told; they stay in `unmarked` until it is. */
  async function markUnmarked(): Promise<void> {
    if (unmarked.size === 0) return;
    const ids = [...unmarked];
    const holdAgain = letGo(ids);
    try {
      await store.outbox.markSent(ids);
    } catch (err) {
      holdAgain();
      throw err;
    }
    for (const id of ids) unmarked.delete(id);
  }

  /**
   * Ends the leases of held rows this relay will not publish, so that the next claim takes them; only those still
   * under this relay's lease (extendLeases to now): a row another relay took over once the lease ran out (this
   * process paused) is being published by that relay, and ending its lease let a third publish it too. A renewal
   * running meanwhile may have moved a row to this relay's next lease: that one is ours too (see leasesOf), or the
   * row stayed leased until the renewed lease ended.
   */
  async function release(rows: readonly OutboxMessage[]): Promise<void> {
    const held: HeldLease[] = [];
    for (const m of rows) for (const availableAt of leasesOf(m.id)) held.push({ id: m.id, availableAt });
    letGo(rows.map((m) => m.id));
    await store.outbox.extendLeases(held, new Date(dbNow()));
  }

  /** Claims and publishes one batch from the outbox; returns how many rows it handled. */
  async function runBatch(): Promise<number> {
    if (!broker.isConnected()) return 0;
    // A bounded broker (the in-process queue) that is full: the rows wait in the outbox for the next poll.
    const limit = Math.min(batchSize, broker.room?.() ?? batchSize);
    if (limit <= 0) return 0;
    // The database's clock unknown since a step (see currentOffset), or never read: the rows wait for the next read, or
    // another relay.
    if (clockPending()) return 0;
    const batch = await store.outbox.claimBatch(limit, new Date(dbNow()), leaseMs);
    if (batch.length > 0) {
      hold(batch);
      await publishBatch(batch);
    }
    return batch.length;
  }

  /**
   * Publishes up to a batch of handed-over rows. With the broker down it gives their leases back instead,
   * so that a claim takes them once it is up (rather than after the lease).
   */
  async function runHanded(): Promise<number> {
    const batch = handed.splice(0, batchSize);
    if (broker.isConnected()) await publishBatch(batch);
    else await release(batch);
    return batch.length;
  }

  async function run(): Promise<void> {
    /** The last turn published handed-over rows: a claim that is due goes next, however many more wait. */
    let servedHanded = false;
    while (running) {
      try {
        // Before the first claim, every CLOCK_CHECK_MS after, and as soon as this process's clock is stepped (after a
        // failed read, there or at start, every CLOCK_RETRY_MS until one answers).
        if (
          performance.now() - clockCheckedAt >= CLOCK_CHECK_MS ||
          (clockPending() && performance.now() >= clockRetryAt)
        ) {
          await checkClock();
        }
        await markUnmarked();
        const claimNow = claimDue || performance.now() - lastClaim >= idleMs;
        // Under steady load the hand-off list never empties; rows only a claim takes (written without a
        // lease, failed tries, webhook events, a dead process's rows) must not wait for the load to stop.
        if (handed.length > 0 && !(claimNow && servedHanded)) {
          await runHanded();
          servedHanded = true;
          continue;
        }
        servedHanded = false;
        if (claimNow) {
          claimDue = false;
          lastClaim = performance.now();
          if ((await runBatch()) >= batchSize) claimDue = true;
          continue;
        }
      } catch (err) {
        log[failureLevel(err)]({ err }, 'outbox relay batch failed');
        await sleep(1000);
        continue;
      }
      // Nothing in hand and no claim due: wait for a hand-off, a notify() or the next poll.
      await sleep(idleMs - (performance.now() - lastClaim));
    }
  }

  broker.onStateChange((connected) => {
    if (connected) relay.notify();
  });

  const relay: OutboxRelay = {
    start() {
      if (running) return;
      running = true;
      claimDue = true;
      loop = run();
    },
    notify() {
      claimDue = true;
      wakeUp();
    },
    leaseForHandOff() {
      // A soft bound: transactions that asked before the queue filled still hand their row over.
      // Not before a read of the database's clock has answered (one still waiting, at start, as well as one that
      // failed): its lease would be by this process's clock, and another relay could claim the row meanwhile.
      return running &&
        wallVsMonotonic !== null &&
        broker.isConnected() &&
        handed.length < Math.min(maxHandedOff, broker.room?.() ?? maxHandedOff)
        ? leaseMs + currentOffset()
        : null;
    },
    handOff(message) {
      if (running) {
        handed.push(message);
        hold([message]);
        wakeUp();
        return;
      }
      // Stopped meanwhile: end the lease so that the next claim (another relay's, or the next start's) takes it.
      // Only while it is still under the lease it was written with (see release()).
      const held = [{ id: message.id, availableAt: message.availableAt }];
      store.outbox.extendLeases(held, new Date(dbNow())).catch((err: unknown) => {
        log.warn(
          { err, messageId: message.messageId },
          'could not end the lease of a handed-over row; a relay claims it when the lease runs out',
        );
      });
    },
    async stop() {
      running = false;
      wakeUp();
      await loop;
      loop = null;
      const deadline = Date.now() + flushTimeoutMs;
      let flushed = 0;
      try {
        await markUnmarked();
        while (broker.isConnected() && Date.now() < deadline) {
          if (handed.length > 0) {
            flushed += await runHanded();
            continue;
          }
          const handled = await runBatch();
          flushed += handled;
          if (handled < batchSize) break;
        }
        if (handed.length > 0) await release(handed.splice(0));
      } catch (err) {
        log.warn({ err }, 'final outbox flush failed; the rows stay for the next relay');
      }
      // What is still held (rows published that the store could not be told of) goes out again through another
      // relay's claim once its lease ends, as before renewals; nothing here renews it any more.
      disarmRenewal();
      leases.clear();
      renewingTo.clear();
      if (flushed > 0) log.info({ rows: flushed }, 'outbox flushed on stop');
    },
    async drain(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while ((await store.outbox.pendingCount()) > 0) {
        if (Date.now() > deadline) throw new Error('outbox did not drain in time');
        if (!running) {
          if (handed.length > 0) await runHanded();
          else await runBatch();
        } else relay.notify();
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
  return relay;
}

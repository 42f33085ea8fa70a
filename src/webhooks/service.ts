/**
 * Stripe webhooks: verify the signature on the exact bytes, store each event once (inbox, unique by
 * event id) together with its outbox row for the `stripe.events` exchange, answer quickly, and apply
 * the event to the ledger afterwards, retrying until it sticks. Stripe delivers at least once and in
 * any order, so every step is idempotent and the ledger only moves forward.
 */
import type Stripe from 'stripe';
import type { Logger } from 'pino';
import type { PaymentsService } from '../payments/service.js';
import type { RefundService } from '../refunds/service.js';
import { failureLevel, type InboxEvent, type Store } from '../store/index.js';
import { serializeError } from '../logger.js';
import type { StripeClient } from '../stripe/client.js';
import { createEventApplier } from './apply.js';
import { dropClientSecrets } from './client-secrets.js';
import { createTaskLimiter } from './task-limiter.js';
import { verifyStripeDelivery, verifyStripeEvent, type ThinEvent, type VerifiedDelivery } from './verify.js';

export { SIGNATURE_TOLERANCE_SECONDS } from './verify.js';

export interface WebhookServiceDeps {
  store: Store;
  stripe: StripeClient;
  payments: PaymentsService;
  refunds: RefundService;
  logger: Logger;
  /** Signing secrets (whsec_...); an event signed with any of them is accepted. */
  secrets: readonly string[];
  /** Topic exchange verified events are published to. */
  eventsExchange: string;
  /** Called after a commit that added outbox rows, so the relay publishes without waiting for its next poll. */
  outboxWritten?: () => void;
  /** Events applied at the same time by this process (default 8); the rest wait, already stored. */
  concurrency?: number;
  /** Events that wait in this process for their turn at most (default DEFAULT_MAX_WAITING); see there. */
  maxWaiting?: number;
  /**
   * The mode of the Stripe key (true: sk_live_/rk_live_). Events of the other mode are stored and published but
   * not applied (see isOtherMode in apply.ts); unset, every event is applied whatever its mode.
   */
  livemode?: boolean;
}

export interface ReceiveResult {
  eventId: string;
  type: string;
  duplicate: boolean;
}

/**
 * A fresh event is normally being applied by the process that received it; the sweep leaves it alone this long.
 * Only this long, by the receiver's clock against the sweeper's; after that only a claim's lease (30 s) keeps other
 * sweeps off, and a process renews it for the events waiting in its line only by claiming them again once it has
 * lapsed, and only while its line has room (not while it is full, when they wait longest). So an event waiting in
 * one process's line can be taken by another process's sweep and applied by both at once. That is safe
 * (whaudit-concurrent-apply.test.ts): every write of apply.ts is conditional or an upsert, a refund outcome is
 * announced by the one write that moved the row, and a refund made elsewhere is inserted once (unique Stripe id);
 * the cost is the duplicate Stripe reads, under backlog.
 */
const FRESH_EVENT_GRACE_MS = 10_000;
/**
 * How many stored events wait in a process's memory for their turn to be applied. Each holds its payload, and the
 * line had no end: while Stripe's API hung (each read waiting out its timeout, 8 at a time) Stripe's deliveries
 * kept coming, and every one joined the line for as long as the outage lasted (3,000 held about 100 MB of heap,
 * growing without a bound toward the process's heap limit). Past this many an event is still stored and acknowledged, but left to the retry
 * sweep, which takes it once the line has room (and the event is FRESH_EVENT_GRACE_MS old).
 */
export const DEFAULT_MAX_WAITING = 256;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 15 * 60_000;

function objectIdOf(event: Stripe.Event): string | null {
  const obj = event.data.object as { id?: unknown };
  return typeof obj.id === 'string' ? obj.id : null;
}

/**
 * The ids an event's lines carry, under the names the rest of the service logs them with: the event, its object,
 * the payment intent it concerns and, for a refund the service asked for, the refund's request_id (from the
 * metadata the service gave it), so that a refund's webhooks are found with the refund's other lines. `reqId`:
 * the id of the webhook request that delivered it, when it is applied on the heels of that request.
 */
export function eventLogIds(event: Stripe.Event, reqId?: string) {
  const obj = event.data.object as {
    id?: unknown;
    object?: unknown;
    payment_intent?: unknown;
    metadata?: { request_id?: unknown } | null;
  };
  const requestId = obj.object === 'refund' ? obj.metadata?.request_id : undefined;
  return {
    reqId,
    eventId: event.id,
    type: event.type,
    objectId: objectIdOf(event) ?? undefined,
    payment_intent:
      obj.object === 'payment_intent' && typeof obj.id === 'string'
        ? obj.id
        : typeof obj.payment_intent === 'string'
          ? obj.payment_intent
          : undefined,
    request_id: typeof requestId === 'string' ? requestId : undefined,
  };
}

export function retryDelayMs(attempts: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(attempts, 20));
}

export type WebhookService = ReturnType<typeof createWebhookService>;

export function createWebhookService(deps: WebhookServiceDeps) {
  const { store } = deps;
  const log = deps.logger.child({ component: 'webhooks' });
  const apply = createEventApplier(deps);
  const limiter = createTaskLimiter(deps.concurrency ?? 8);
  const maxWaiting = deps.maxWaiting ?? DEFAULT_MAX_WAITING;
  /** Events left to the retry sweep since the line was last full; 0 while events are taken on arrival. */
  let leftToSweep = 0;
  /** Event ids this process is applying or has queued to apply; the sweep must not start a second run of them. */
  const scheduled = new Set<string>();
  const outboxWritten = () => deps.outboxWritten?.();

  /** `reqId`: the webhook request's, when the event is applied right after that request stored it. */
  async function processStored(
    e: Pick<InboxEvent, 'eventId' | 'payload' | 'attempts'>,
    reqId?: string,
  ): Promise<boolean> {
    const event = e.payload as Stripe.Event;
    const ids = eventLogIds(event, reqId);
    try {
      const result = await apply(event, ids);
      await store.inbox.markProcessed(e.eventId);
      log.debug({ ...ids, result }, 'webhook event applied');
      return true;
    } catch (err) {
      const retryAt = new Date(Date.now() + retryDelayMs(e.attempts));
      const notRecorded = await store.inbox
        .markFailed(e.eventId, err instanceof Error ? err.message : String(err), retryAt)
        .then(
          () => undefined,
          (markErr: unknown) => markErr,
        );
      if (notRecorded === undefined) {
        log.warn({ err, ...ids, attempts: e.attempts + 1, retryAt }, 'webhook event failed; will retry');
      } else {
        // One line for both: with the database away, applying and recording fail for the same reason. The event
        // stays stored and unapplied, and the retry sweep takes it again.
        log[failureLevel(notRecorded)](
          { err, ...ids, attempts: e.attempts + 1, recordErr: serializeError(notRecorded) },
          'webhook event failed, and so did recording the failure; the retry sweep takes it again',
        );
      }
      return false;
    } finally {
      // Applying may have announced a refund outcome through the outbox.
      outboxWritten();
    }
  }

  function schedule(
    e: Pick<InboxEvent, 'eventId' | 'payload' | 'attempts'>,
    reqId?: string,
  ): Promise<boolean> {
    if (scheduled.has(e.eventId)) return Promise.resolve(false);
    scheduled.add(e.eventId);
    return limiter.run(() => processStored(e, reqId)).finally(() => scheduled.delete(e.eventId));
  }

  /** One line when the line of events to apply fills up (not one per event: they come by the hundred then). */
  function noteLeftToSweep(): void {
    if (leftToSweep++ === 0) {
      log.warn(
        { waiting: limiter.waiting, applying: limiter.active },
        'webhook events arrive faster than they are applied; new ones are stored and left to the retry sweep',
      );
    }
  }

  function noteLineOpen(): void {
    if (leftToSweep === 0) return;
    log.info({ leftToSweep }, 'webhook events are applied on arrival again');
    leftToSweep = 0;
  }

  /** receive() for an event verify() has accepted; `reqId`: the id of the request that delivered it. */
  async function storeEvent(verified: Stripe.Event, reqId?: string): Promise<ReceiveResult> {
    // Verified on the bytes Stripe signed; what is kept and published has the client secrets taken out.
    const event = dropClientSecrets(verified);
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
      outboxWritten();
      if (limiter.waiting < maxWaiting) {
        noteLineOpen();
        void schedule({ eventId: event.id, payload: event, attempts: 0 }, reqId);
      } else noteLeftToSweep();
    }
    log.info({ ...eventLogIds(event, reqId), duplicate: !inserted }, 'webhook received');
    return { eventId: event.id, type: event.type, duplicate: !inserted };
  }

  return {
    /**
     * Verifies the signature and the event's shape; throws a 400 ProblemError. A thin event comes back as such
     * (`thin`), for ignoreThin.
     */
    verify: (rawBody: Buffer, signature: string | string[] | undefined): VerifiedDelivery =>
      verifyStripeDelivery(rawBody, signature, deps.secrets),

    /**
     * A verified thin event (an event destination sending the thin payload, Stripe's v2 events): it carries no
     * snapshot and the ledger learns nothing from it, so it is neither stored, published nor applied, and is
     * acknowledged (refused, Stripe would send it again for days). One warning per delivery names its type.
     */
    ignoreThin(thin: ThinEvent, reqId?: string): void {
      log.warn(
        { reqId, eventId: thin.id, type: thin.type, object: thin.object },
        'thin event (an event destination with the thin payload) acknowledged and not applied; the ledger ' +
          'learns from snapshot events: point a webhook endpoint (snapshot payload) at /webhook instead',
      );
    },

    /**
     * Verifies and stores the event with its `stripe.events` outbox row in one transaction, once per
     * event id. Applying it to the ledger starts after the commit, off the request path.
     */
    async receive(rawBody: Buffer, signature: string | string[] | undefined): Promise<ReceiveResult> {
      return storeEvent(verifyStripeEvent(rawBody, signature, deps.secrets));
    },

    store: storeEvent,

    /**
     * Applies stored events whose processing failed or was interrupted (a crash between the commit
     * and the ledger update); returns how many were applied now.
     */
    async retryPending(limit = 100): Promise<number> {
      // No more than the line has room for: what is claimed and not taken stays leased, out of every sweep's reach.
      const room = Math.min(limit, maxWaiting - limiter.waiting);
      if (room <= 0) return 0;
      const batch = await store.inbox.claimUnprocessed(room);
      const now = Date.now();
      const due = batch.filter(
        (e) =>
          !scheduled.has(e.eventId) &&
          // Skipped rows stay leased for a while and come back if their receiver died meanwhile.
          (e.attempts > 0 || now - Date.parse(e.receivedAt) >= FRESH_EVENT_GRACE_MS),
      );
      const results = await Promise.all(due.map((e) => schedule(e)));
      return results.filter(Boolean).length;
    },

    /** Waits until every event this process started applying is done (shutdown and tests). */
    idle: (): Promise<void> => limiter.idle(),

    /** Events waiting in this process for their turn to be applied (at most maxWaiting, give or take a sweep's). */
    waiting: (): number => limiter.waiting,
  };
}

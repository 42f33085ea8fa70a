/** The stuck-refund sweep run on a store alone, for the sweep's store tests. */
import { pino } from 'pino';
import { requeueStuck, type Deps } from '../../src/service.js';
import type { Store } from '../../src/store/index.js';
import { uid } from './harness.js';

/** The queue refund request messages go to. */
export const REQUESTS_QUEUE = 'stripe_refund_requests';
/** The service's sweep: refunds unchanged for 10 minutes. */
export const SERVICE_STALE_MS = 10 * 60_000;

/** requeueStuck on `store` with a broker that is up: refunds in flight unchanged for `staleMs` are queued again. */
export function sweepStuck(store: Store, staleMs = SERVICE_STALE_MS): Promise<number> {
  const deps = {
    store,
    broker: { isConnected: () => true },
    topology: { requests: REQUESTS_QUEUE },
    logger: pino({ level: 'silent' }),
  } as unknown as Deps;
  return requeueStuck(deps, staleMs);
}

/** A succeeded payment intent of owner `acme` (1 000 eur) in `store`, refunds can be asked of: its id. */
export async function succeededIntent(store: Store): Promise<string> {
  const pi = uid('pi');
  await store.payments.insert({
    id: pi,
    kind: 'payment_intent',
    owner: 'acme',
    amount: 1_000,
    currency: 'eur',
    status: 'succeeded',
  });
  return pi;
}

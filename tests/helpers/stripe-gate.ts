/**
 * Holds the service's real Stripe SDK calls to refunds.create at "Stripe" until the test releases them, so a
 * test can act while a refund is in flight (the SDK call itself then runs unchanged).
 */
import Stripe from 'stripe';

export interface RefundCreateGate {
  /** Resolves when the first held call has arrived. */
  entered: Promise<void>;
  release: () => void;
  /** Releases and puts the SDK method back. */
  restore: () => void;
}

/**
 * `othersLost`: while the first call is held, any other create is lost on the way (a connection error), so its
 * caller cannot tell whether Stripe made the refund. Otherwise every call waits at the gate.
 */
export function gateRefundCreate(stripe: Stripe, opts: { othersLost?: boolean } = {}): RefundCreateGate {
  const refunds = stripe.refunds;
  const create = refunds.create.bind(refunds);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let inFlight = false;
  let markEntered!: () => void;
  const entered = new Promise<void>((resolve) => (markEntered = resolve));
  refunds.create = (async (...args: Parameters<typeof create>) => {
    if (opts.othersLost && inFlight) {
      throw new Stripe.errors.StripeConnectionError({
        message: 'An error occurred with our connection to Stripe.',
        type: 'api_error',
      });
    }
    inFlight = true;
    markEntered();
    await gate;
    try {
      return await create(...args);
    } finally {
      inFlight = false;
    }
  }) as typeof refunds.create;
  return {
    entered,
    release,
    restore: () => {
      release();
      refunds.create = create as typeof refunds.create;
    },
  };
}

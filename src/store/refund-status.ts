export const REFUND_STATUSES = [
  'queued',
  'processing',
  'pending',
  'requires_action',
  'succeeded',
  'failed',
  'canceled',
] as const;

export type RefundStatus = (typeof REFUND_STATUSES)[number];

/**
 * Forward-only ranks: a refund may move to a higher rank, or sideways within a non-terminal rank
 * (pending <-> requires_action), never back. Rank 3 is terminal.
 */
export const REFUND_STATUS_RANK: Readonly<Record<RefundStatus, number>> = Object.freeze({
  queued: 0,
  processing: 1,
  pending: 2,
  requires_action: 2,
  succeeded: 3,
  failed: 3,
  canceled: 3,
});

const TERMINAL_RANK = 3;

/** Statuses a refund can still leave: the work in flight. */
export const OPEN_REFUND_STATUSES: readonly RefundStatus[] = REFUND_STATUSES.filter(
  (s) => REFUND_STATUS_RANK[s] < TERMINAL_RANK,
);

/** Statuses whose amount no longer counts against what is left to refund. */
export const RELEASED_REFUND_STATUSES: readonly RefundStatus[] = ['failed', 'canceled'];

export function isRefundStatus(value: unknown): value is RefundStatus {
  return typeof value === 'string' && (REFUND_STATUSES as readonly string[]).includes(value);
}

export function isTerminalRefundStatus(status: RefundStatus): boolean {
  return REFUND_STATUS_RANK[status] >= TERMINAL_RANK;
}

/**
 * Whether a refund in status `from` may move to `to`. Forward only, with Stripe's one exception: a refund it
 * reported `succeeded` can still fail later (the customer's bank returns it; docs.stripe.com/refunds, failed
 * refunds), and the ledger must then say so and stop counting its amount.
 */
export function canAdvanceRefund(from: RefundStatus, to: RefundStatus): boolean {
  if (from === 'succeeded' && to === 'failed') return true;
  const a = REFUND_STATUS_RANK[from];
  const b = REFUND_STATUS_RANK[to];
  return b > a || (b === a && b < TERMINAL_RANK && from !== to);
}

/** Every status a refund may be in for a move to `to` to be allowed. */
export function refundStatusesBefore(to: RefundStatus): RefundStatus[] {
  return REFUND_STATUSES.filter((from) => canAdvanceRefund(from, to));
}

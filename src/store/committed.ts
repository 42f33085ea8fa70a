import type { ExpressionBuilder } from 'kysely';
import type { Database, PaymentsTable } from './database.js';
import { RELEASED_REFUND_STATUSES } from './refund-status.js';

/**
 * `committed`: what the refunds of payment row `p` hold (RefundsRepo.sumCommitted's rule: every refund
 * not released), as a scalar subquery beside the row, so one statement reads both.
 */
export function committedOfPayment(eb: ExpressionBuilder<Database & { p: PaymentsTable }, 'p'>) {
  return eb
    .selectFrom('refunds as c')
    .select((sub) => sub.fn.coalesce(sub.fn.sum<number | string>('c.amount'), sub.lit(0)).as('total'))
    .whereRef('c.payment_intent_id', '=', 'p.id')
    .where('c.status', 'not in', RELEASED_REFUND_STATUSES)
    .as('committed');
}

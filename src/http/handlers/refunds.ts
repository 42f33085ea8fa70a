import { publicRequestId, type RefundService } from '../../refunds/service.js';
import type { Handlers } from '../operations.js';

export const QUEUED_MESSAGE = 'Refund request queued successfully';

export const refundHandlers = (refunds: RefundService) =>
  ({
    async createRefund({ body, ctx }) {
      const r = await refunds.refundNow(
        ctx.caller,
        body,
        ctx.idempotencyKey,
        ctx.requestId,
        ctx.noteRefundRequestId,
      );
      return {
        status: 200,
        body: {
          success: true,
          refund: {
            id: r.stripeRefundId ?? '',
            amount: r.amount,
            status: r.status,
            ...(r.currency ? { currency: r.currency } : {}),
            payment_intent: r.paymentIntentId,
            reason: r.reason,
            failure_reason: r.failureReason,
          },
          request_id: publicRequestId(r),
        },
      };
    },

    async createRefundAsync({ body, ctx }) {
      const r = await refunds.refundLater(
        ctx.caller,
        body,
        ctx.idempotencyKey,
        ctx.requestId,
        ctx.noteRefundRequestId,
      );
      return {
        status: 202,
        body: { success: true, message: QUEUED_MESSAGE, request_id: publicRequestId(r), status: r.status },
      };
    },

    async getRefundStatus({ path, ctx }) {
      const r = await refunds.status(ctx.caller, path.request_id);
      return {
        status: 200,
        body: {
          success: true,
          refund_id: r.stripeRefundId,
          status: r.status,
          amount: r.amount,
          currency: r.currency,
          request_id: publicRequestId(r),
          payment_intent_id: r.paymentIntentId,
          failure_reason: r.failureReason,
          created_at: r.createdAt,
          updated_at: r.updatedAt,
        },
      };
    },
  }) satisfies Partial<Handlers>;

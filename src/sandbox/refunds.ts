import { getCharge, renderCharge } from './charges.js';
import { listObject, paginate, type ListOptions } from './collection.js';
import { indexPush, nowSeconds, ok, type RequestInfo, type SandboxContext } from './context.js';
import { checkMinorUnitStep, formatAmount } from './currencies.js';
import { NO_REQUEST, type EventRequestInfo } from './event-log.js';
import { parseExpand } from './expand.js';
import {
  bool,
  expand,
  initialMetadata,
  int,
  listParams,
  mergeMetadata,
  metadata,
  obj,
  oneOf,
  str,
  unsupportedFields,
  type Metadata,
  type Params,
} from './param-spec.js';
import { getPaymentIntent } from './payment-intents.js';
import type { RouteDefinition } from './router.js';
import { invalidRequest, resourceMissing } from './stripe-error.js';
import type { ChargeObject, RefundObject } from './wire-types.js';

const EXPANDABLE = ['charge', 'payment_intent'];
const ALWAYS_NULL = [
  'balance_transaction',
  'failure_balance_transaction',
  'source_transfer_reversal',
  'transfer_reversal',
];

const createSpec = obj({
  amount: int(),
  charge: str(),
  expand,
  instructions_email: str(),
  metadata: metadata(),
  payment_intent: str(),
  reason: oneOf(['duplicate', 'fraudulent', 'requested_by_customer']),
  refund_application_fee: bool,
  reverse_transfer: bool,
  ...unsupportedFields(['currency', 'customer', 'origin']),
});

export function getRefund(ctx: SandboxContext, id: string, param = 'refund'): RefundObject {
  const refund = ctx.state.refunds.get(id);
  if (!refund) throw resourceMissing('refund', id, param);
  return refund;
}

export function renderRefund(
  ctx: SandboxContext,
  refund: RefundObject,
  fields: ReadonlySet<string>,
): unknown {
  if (fields.size === 0) return refund;
  const out: Record<string, unknown> = { ...refund };
  if (fields.has('charge')) {
    const charge = ctx.state.charges.get(refund.charge);
    if (charge) out['charge'] = renderCharge(ctx, charge, new Set());
  }
  if (fields.has('payment_intent') && refund.payment_intent) {
    out['payment_intent'] = ctx.state.paymentIntents.get(refund.payment_intent) ?? refund.payment_intent;
  }
  return out;
}

function refundableCharge(ctx: SandboxContext, params: Params): ChargeObject {
  const intentId = params['payment_intent'] as string | undefined;
  const chargeId = params['charge'] as string | undefined;
  if (intentId === undefined && chargeId === undefined) {
    throw invalidRequest(
      'One of the following params should be provided for this request: payment_intent or charge.',
      'payment_intent',
      'parameter_missing',
    );
  }
  if (intentId !== undefined) {
    const intent = getPaymentIntent(ctx, intentId, 'payment_intent');
    const charge = intent.latest_charge ? ctx.state.charges.get(intent.latest_charge) : undefined;
    if (intent.status !== 'succeeded' || !charge || charge.status !== 'succeeded') {
      throw invalidRequest(
        `This PaymentIntent (${intent.id}) does not have a successful charge to refund.`,
        'payment_intent',
      );
    }
    if (chargeId !== undefined && chargeId !== charge.id) {
      throw invalidRequest(`The charge ${chargeId} does not belong to PaymentIntent ${intent.id}.`, 'charge');
    }
    return charge;
  }
  const charge = getCharge(ctx, chargeId as string, 'charge');
  if (charge.status !== 'succeeded') {
    throw invalidRequest(`Charge ${charge.id} has not succeeded, so it cannot be refunded.`, 'charge');
  }
  return charge;
}

function referenceNumber(ctx: SandboxContext): string {
  return ctx.ids.random(23).replace(/[^0-9]/g, '7');
}

function createRefund(ctx: SandboxContext, params: Params, request: RequestInfo): RefundObject {
  const charge = refundableCharge(ctx, params);
  if (charge.refunded || charge.amount_refunded >= charge.amount) {
    throw invalidRequest(
      `Charge ${charge.id} has already been refunded.`,
      undefined,
      'charge_already_refunded',
    );
  }
  const remaining = charge.amount - charge.amount_refunded;
  const amount = (params['amount'] as number | undefined) ?? remaining;
  if (amount < 1) {
    throw invalidRequest(
      'This value must be greater than or equal to 1.',
      'amount',
      'parameter_invalid_integer',
    );
  }
  checkMinorUnitStep(amount, charge.currency);
  if (amount > remaining) {
    throw invalidRequest(
      `Refund amount (${formatAmount(amount, charge.currency)}) is greater than unrefunded amount on charge ` +
        `(${formatAmount(remaining, charge.currency)})`,
      'amount',
    );
  }
  const card = ctx.state.cardOf.get(charge.id);
  // As on Stripe (https://docs.stripe.com/testing#refunds): pm_card_pendingRefund refunds begin `pending`;
  // pm_card_refundFail refunds begin `succeeded` and fail later; all others succeed for good.
  const pending = card?.refund === 'pending_then_succeeded';
  const settlesLater = card?.refund !== undefined;
  const refund: RefundObject = {
    id: ctx.ids.id('re', 24),
    object: 'refund',
    amount,
    balance_transaction: ctx.ids.id('txn', 24),
    charge: charge.id,
    created: nowSeconds(),
    currency: charge.currency,
    destination_details: {
      card: pending
        ? { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' }
        : {
            reference: referenceNumber(ctx),
            reference_status: 'available',
            reference_type: 'acquirer_reference_number',
            type: 'refund',
          },
      type: 'card',
    },
    ...(params['instructions_email'] !== undefined
      ? { instructions_email: params['instructions_email'] as string }
      : {}),
    metadata: initialMetadata(params['metadata']),
    payment_intent: charge.payment_intent,
    reason: (params['reason'] as string | undefined) ?? null,
    receipt_number: null,
    source_transfer_reversal: null,
    status: pending ? 'pending' : 'succeeded',
    transfer_reversal: null,
  };
  // Pending refunds count against the charge right away, so nothing can be refunded twice.
  charge.amount_refunded += amount;
  charge.refunded = charge.amount_refunded >= charge.amount;
  ctx.state.refunds.add(refund);
  indexPush(ctx.state.refundsByCharge, charge.id, refund);
  if (charge.payment_intent) indexPush(ctx.state.refundsByIntent, charge.payment_intent, refund);
  ctx.events.emit('refund.created', refund, request);
  ctx.events.emit('charge.refunded', charge, request);
  if (settlesLater) {
    ctx.refundTimers.schedule(refund.id, ctx.refundSettleDelayMs, () => {
      settleRefund(ctx, refund, NO_REQUEST);
    });
  }
  return refund;
}

/**
 * Moves a refund that has not settled yet to its final state: a pm_card_refundFail refund from `succeeded`
 * to `failed` (the charge gets the amount back as refundable), a pending one to `succeeded`. False if the
 * refund has nothing left to settle.
 */
export function settleRefund(ctx: SandboxContext, refund: RefundObject, request: EventRequestInfo): boolean {
  const card = ctx.state.cardOf.get(refund.charge);
  const failsLater = card?.refund === 'succeeded_then_failed' && refund.status === 'succeeded';
  if (refund.status !== 'pending' && !failsLater) return false;
  ctx.refundTimers.cancel(refund.id);
  const charge = ctx.state.charges.get(refund.charge);
  const previous = { status: refund.status };
  if (failsLater) {
    refund.status = 'failed';
    refund.failure_reason = 'expired_or_canceled_card';
    refund.failure_balance_transaction = ctx.ids.id('txn', 24);
    refund.destination_details.card.reference_status = 'unavailable';
    if (charge) {
      charge.amount_refunded = Math.max(0, charge.amount_refunded - refund.amount);
      charge.refunded = charge.amount_refunded >= charge.amount;
    }
    ctx.events.emit('refund.failed', refund, request);
  } else {
    refund.status = 'succeeded';
    refund.destination_details.card.reference = referenceNumber(ctx);
    refund.destination_details.card.reference_status = 'available';
  }
  ctx.events.emit('refund.updated', refund, request, previous);
  ctx.events.emit('charge.refund.updated', refund, request, previous);
  return true;
}

export function refundRoutes(ctx: SandboxContext): RouteDefinition[] {
  const render = (refund: RefundObject, params: Params) =>
    ok(renderRefund(ctx, refund, parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL)));
  return [
    {
      method: 'POST',
      path: '/v1/refunds',
      spec: createSpec,
      handler: (params, _path, request) => {
        parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL);
        return render(createRefund(ctx, params, request), params);
      },
    },
    {
      method: 'GET',
      path: '/v1/refunds',
      spec: obj({ ...listParams, charge: str(), payment_intent: str() }),
      handler: (params) => {
        const fields = parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL, true);
        const chargeId = params['charge'] as string | undefined;
        const intentId = params['payment_intent'] as string | undefined;
        const { refunds } = ctx.state;
        const view =
          chargeId !== undefined
            ? refunds.subsetView(ctx.state.refundsByCharge.get(chargeId) ?? [])
            : intentId !== undefined
              ? refunds.subsetView(ctx.state.refundsByIntent.get(intentId) ?? [])
              : refunds.view();
        const page = paginate(
          view,
          params as ListOptions,
          refunds.cursor('refund'),
          (r) => intentId === undefined || r.payment_intent === intentId,
        );
        return ok(listObject(page, (r) => renderRefund(ctx, r, fields), '/v1/refunds'));
      },
    },
    {
      method: 'GET',
      path: '/v1/refunds/:refund',
      spec: obj({ expand }),
      handler: (params, [id = '']) => render(getRefund(ctx, id), params),
    },
    {
      method: 'POST',
      path: '/v1/refunds/:refund',
      spec: obj({ expand, metadata: metadata(true) }),
      handler: (params, [id = ''], request) => {
        const refund = getRefund(ctx, id);
        parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL);
        if (params['metadata'] !== undefined) {
          const previous = { metadata: refund.metadata };
          refund.metadata = mergeMetadata(refund.metadata, params['metadata'] as Metadata | null);
          ctx.events.emit('refund.updated', refund, request, previous);
          ctx.events.emit('charge.refund.updated', refund, request, previous);
        }
        return render(refund, params);
      },
    },
    {
      method: 'POST',
      path: '/v1/refunds/:refund/cancel',
      spec: obj({ expand }),
      handler: (params, [id = '']) => {
        const refund = getRefund(ctx, id);
        parseExpand(params['expand'], EXPANDABLE, ALWAYS_NULL);
        // Card refunds never wait for customer action, so (as on Stripe) they cannot be canceled.
        throw invalidRequest(
          `Refund ${refund.id} cannot be canceled because it has a status of ${refund.status}. Only refunds with a ` +
            'status of `requires_action` can be canceled.',
          'refund',
        );
      },
    },
  ];
}

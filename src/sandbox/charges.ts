import { listObject, paginate, type ListOptions } from './collection.js';
import { indexPush, nowSeconds, ok, type SandboxContext } from './context.js';
import { parseExpand } from './expand.js';
import { expand, listParams, obj, str, unsupportedFields } from './param-spec.js';
import { cardFingerprint, EXP_MONTH, expYear } from './payment-methods.js';
import type { RouteDefinition } from './router.js';
import { resourceMissing } from './stripe-error.js';
import type { TestCard } from './test-cards.js';
import type { ChargeObject, ChargeOutcome, PaymentIntentObject, PaymentMethodObject } from './wire-types.js';

const ALWAYS_NULL = [
  'application',
  'application_fee',
  'balance_transaction',
  'customer',
  'failure_balance_transaction',
  'invoice',
  'on_behalf_of',
  'review',
  'source_transfer',
  'transfer',
];

function outcomeFor(card: TestCard, riskScore: number): ChargeOutcome {
  if (!card.decline) {
    return {
      network_status: 'approved_by_network',
      reason: null,
      risk_level: 'normal',
      risk_score: riskScore,
      seller_message: 'Payment complete.',
      type: 'authorized',
    };
  }
  const generic = card.decline.reason === 'generic_decline';
  return {
    network_status: 'declined_by_network',
    reason: card.decline.reason,
    risk_level: 'normal',
    risk_score: riskScore,
    seller_message: generic
      ? 'The bank did not return any further details with this decline.'
      : `The bank returned the decline code \`${card.decline.reason}\`.`,
    type: 'issuer_declined',
  };
}

/** One charge attempt of a PaymentIntent: succeeded, or failed with the card's decline. */
export function createCharge(
  ctx: SandboxContext,
  intent: PaymentIntentObject,
  pm: PaymentMethodObject,
  card: TestCard,
): ChargeObject {
  const succeeded = card.decline === undefined;
  const charge: ChargeObject = {
    id: ctx.ids.id('ch', 24),
    object: 'charge',
    amount: intent.amount,
    amount_captured: succeeded ? intent.amount : 0,
    amount_refunded: 0,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: succeeded ? ctx.ids.id('txn', 24) : null,
    billing_details: { ...pm.billing_details, address: { ...pm.billing_details.address } },
    calculated_statement_descriptor: (intent.statement_descriptor ?? 'STRIPE SANDBOX').slice(0, 22),
    captured: succeeded,
    created: nowSeconds(),
    currency: intent.currency,
    customer: null,
    description: intent.description,
    disputed: false,
    failure_balance_transaction: null,
    failure_code: card.decline?.code ?? null,
    failure_message: card.decline?.message ?? null,
    fraud_details: {},
    invoice: null,
    livemode: false,
    metadata: { ...intent.metadata },
    on_behalf_of: null,
    outcome: outcomeFor(card, Math.floor(Math.random() * 64)),
    paid: succeeded,
    payment_intent: intent.id,
    payment_method: pm.id,
    payment_method_details: {
      card: {
        amount_authorized: succeeded ? intent.amount : null,
        brand: card.brand,
        checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' },
        country: 'US',
        exp_month: EXP_MONTH,
        exp_year: expYear(),
        extended_authorization: { status: 'disabled' },
        fingerprint: cardFingerprint(card),
        funding: 'credit',
        incremental_authorization: { status: 'unavailable' },
        installments: null,
        last4: card.last4,
        mandate: null,
        multicapture: { status: 'unavailable' },
        network: card.brand,
        network_token: { used: false },
        overcapture: { maximum_amount_capturable: intent.amount, status: 'unavailable' },
        three_d_secure: null,
        wallet: null,
      },
      type: 'card',
    },
    radar_options: {},
    receipt_email: intent.receipt_email,
    receipt_number: null,
    receipt_url: null,
    refunded: false,
    review: null,
    shipping: null,
    source_transfer: null,
    statement_descriptor: intent.statement_descriptor,
    statement_descriptor_suffix: intent.statement_descriptor_suffix,
    status: succeeded ? 'succeeded' : 'failed',
    transfer_data: null,
    transfer_group: null,
  };
  ctx.state.charges.add(charge);
  ctx.state.cardOf.set(charge.id, card);
  indexPush(ctx.state.chargesByIntent, intent.id, charge);
  return charge;
}

export function getCharge(ctx: SandboxContext, id: string, param = 'id'): ChargeObject {
  const charge = ctx.state.charges.get(id);
  if (!charge) throw resourceMissing('charge', id, param);
  return charge;
}

/** The charge with requested expansions: `payment_intent`, and `refunds` as its sublist. */
export function renderCharge(
  ctx: SandboxContext,
  charge: ChargeObject,
  fields: ReadonlySet<string>,
): unknown {
  if (fields.size === 0) return charge;
  const out: Record<string, unknown> = { ...charge };
  if (fields.has('payment_intent') && charge.payment_intent) {
    out['payment_intent'] = ctx.state.paymentIntents.get(charge.payment_intent) ?? charge.payment_intent;
  }
  if (fields.has('refunds')) {
    const refunds = ctx.state.refundsByCharge.get(charge.id) ?? [];
    out['refunds'] = {
      object: 'list',
      data: refunds.slice(-10).reverse(),
      has_more: refunds.length > 10,
      url: `/v1/charges/${charge.id}/refunds`,
    };
  }
  return out;
}

export function chargeRoutes(ctx: SandboxContext): RouteDefinition[] {
  const expandable = ['payment_intent', 'refunds'];
  return [
    {
      method: 'GET',
      path: '/v1/charges',
      spec: obj({
        ...listParams,
        payment_intent: str(),
        ...unsupportedFields(['customer', 'transfer_group']),
      }),
      handler: (params) => {
        const fields = parseExpand(params['expand'], expandable, ALWAYS_NULL, true);
        const intentId = params['payment_intent'] as string | undefined;
        const { charges } = ctx.state;
        const view =
          intentId === undefined
            ? charges.view()
            : charges.subsetView(ctx.state.chargesByIntent.get(intentId) ?? []);
        const page = paginate(view, params as ListOptions, charges.cursor('charge'));
        return ok(listObject(page, (c) => renderCharge(ctx, c, fields), '/v1/charges'));
      },
    },
    {
      method: 'GET',
      path: '/v1/charges/:charge',
      spec: obj({ expand }),
      handler: (params, [id = '']) => {
        const fields = parseExpand(params['expand'], expandable, ALWAYS_NULL);
        return ok(renderCharge(ctx, getCharge(ctx, id, 'charge'), fields));
      },
    },
  ];
}

import { createHash } from 'node:crypto';
import { nowSeconds, ok, type SandboxContext } from './context.js';
import { parseExpand } from './expand.js';
import { expand, obj } from './param-spec.js';
import type { RouteDefinition } from './router.js';
import { SandboxError } from './stripe-error.js';
import { findTestCard, type TestCard } from './test-cards.js';
import type { PaymentMethodObject } from './wire-types.js';

const DISPLAY_BRAND: Readonly<Record<string, string>> = Object.freeze({
  visa: 'visa',
  mastercard: 'mastercard',
  amex: 'american_express',
});

export const EXP_MONTH = 12;

export function expYear(): number {
  return new Date().getUTCFullYear() + 3;
}

/** Same card, same fingerprint, as on Stripe. */
export function cardFingerprint(card: TestCard): string {
  return createHash('sha256').update(card.id).digest('base64url').replace(/[-_]/g, 'x').slice(0, 16);
}

function paymentMethodMissing(id: string, param: string): SandboxError {
  return new SandboxError(404, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    message: `No such PaymentMethod: '${id}'`,
    param,
  });
}

/**
 * A magic test id such as `pm_card_visa` yields a new PaymentMethod each time it is used,
 * as on Stripe; an id the sandbox issued earlier is reused.
 */
export function resolvePaymentMethod(
  ctx: SandboxContext,
  id: string,
  param: string,
): { pm: PaymentMethodObject; card: TestCard } {
  const existing = ctx.state.paymentMethods.get(id);
  const existingCard = ctx.state.cardOf.get(id);
  if (existing && existingCard) return { pm: existing, card: existingCard };
  const card = findTestCard(id);
  if (!card) throw paymentMethodMissing(id, param);
  const pm: PaymentMethodObject = {
    id: ctx.ids.id('pm', 24),
    object: 'payment_method',
    allow_redisplay: 'unspecified',
    billing_details: {
      address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
      email: null,
      name: null,
      phone: null,
    },
    card: {
      brand: card.brand,
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'unchecked' },
      country: 'US',
      display_brand: DISPLAY_BRAND[card.brand] ?? card.brand,
      exp_month: EXP_MONTH,
      exp_year: expYear(),
      fingerprint: cardFingerprint(card),
      funding: 'credit',
      generated_from: null,
      last4: card.last4,
      networks: { available: [card.brand], preferred: null },
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: nowSeconds(),
    customer: null,
    livemode: false,
    metadata: {},
    type: 'card',
  };
  ctx.state.paymentMethods.add(pm);
  ctx.state.cardOf.set(pm.id, card);
  return { pm, card };
}

export function paymentMethodRoutes(ctx: SandboxContext): RouteDefinition[] {
  return [
    {
      method: 'GET',
      path: '/v1/payment_methods/:payment_method',
      spec: obj({ expand }),
      handler: (params, [id = '']) => {
        parseExpand(params['expand'], [], ['customer']);
        const pm = ctx.state.paymentMethods.get(id);
        if (!pm) throw paymentMethodMissing(id, 'payment_method');
        return ok(pm);
      },
    },
  ];
}

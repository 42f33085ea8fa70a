import { invalidRequest } from './stripe-error.js';
import {
  fitsMinorUnitStep,
  formatAmount,
  isZeroDecimal,
  MAX_AMOUNT,
  maxAmount,
  MINIMUM_CHARGE,
  minorUnitStep,
  SUPPORTED_CURRENCIES,
} from '../money/currencies.js';

// The currency facts are shared with the service (src/money); this module adds Stripe's error answers.
export { formatAmount, isZeroDecimal, MAX_AMOUNT, maxAmount };

const SUPPORTED = SUPPORTED_CURRENCIES;
const MINIMUM = MINIMUM_CHARGE;

/** Validates and lower-cases a currency code, or throws Stripe's error for it. */
export function normalizeCurrency(value: string, param = 'currency'): string {
  const currency = value.toLowerCase();
  if (!SUPPORTED.has(currency)) {
    throw invalidRequest(
      `Invalid currency: ${currency}. Stripe currently supports these currencies: ${[...SUPPORTED].join(', ')}`,
      param,
    );
  }
  return currency;
}

/**
 * Stripe's rules for amounts in steps: three-decimal currencies (docs.stripe.com/currencies#three-decimal) take
 * payment intents, refunds and disputes only with a last digit of 0; isk and ugx
 * (docs.stripe.com/currencies#special-cases) only as whole units, two-decimal values ending in 00. Stripe documents
 * the rules but not the words of its errors, so the messages here are the sandbox's own, with Stripe's type and
 * param.
 */
export function checkMinorUnitStep(amount: number, currency: string, param = 'amount'): void {
  if (fitsMinorUnitStep(amount, currency)) return;
  const step = minorUnitStep(currency);
  const down = amount - (amount % step);
  const why =
    step === 10
      ? `Amounts in ${currency}, a three-decimal currency, must be evenly divisible by 10 ` +
        `(round to the nearest ten, for example ${down} or ${down + 10}). ` +
        'See https://docs.stripe.com/currencies#three-decimal for more information.'
      : `Amounts in ${currency} are two-decimal values of whole units and must be evenly divisible by 100 ` +
        `(fractions of ${currency} cannot be charged: for example ${down} or ${down + 100}). ` +
        'See https://docs.stripe.com/currencies#special-cases for more information.';
  throw invalidRequest(`Invalid amount: ${amount}. ${why}`, param);
}

/**
 * Stripe's bounds on a charge amount: at least 1, the currency minimum, at most 99,999,999 (999,999,999,999 in
 * idr), and the currency's step (checkMinorUnitStep).
 */
export function checkChargeAmount(amount: number, currency: string, param = 'amount'): void {
  if (amount < 1) {
    throw invalidRequest(
      'This value must be greater than or equal to 1.',
      param,
      'parameter_invalid_integer',
    );
  }
  const maximum = maxAmount(currency);
  if (amount > maximum) {
    throw invalidRequest(
      `Amount must be no more than ${formatAmount(maximum, currency)} ${currency}`,
      param,
      'amount_too_large',
    );
  }
  const minimum = MINIMUM[currency];
  if (minimum !== undefined && amount < minimum) {
    throw invalidRequest(
      `Amount must be at least ${formatAmount(minimum, currency)} ${currency}`,
      param,
      'amount_too_small',
    );
  }
  checkMinorUnitStep(amount, currency, param);
}

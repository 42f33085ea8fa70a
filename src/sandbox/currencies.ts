import { invalidRequest } from './stripe-error.js';
import {
  fitsMinorUnitStep,
  formatAmount,
  isZeroDecimal,
  MAX_AMOUNT,
  MINIMUM_CHARGE,
  SUPPORTED_CURRENCIES,
} from '../money/currencies.js';

// The currency facts are shared with the service (src/money); this module adds Stripe's error answers.
export { formatAmount, isZeroDecimal, MAX_AMOUNT };

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
 * Stripe's rule for three-decimal currencies (docs.stripe.com/currencies#three-decimal): payment intents,
 * refunds and disputes take them only with a last digit of 0. Stripe documents the rule but not the words
 * of its error, so the message here is the sandbox's own, with Stripe's type and param.
 */
export function checkMinorUnitStep(amount: number, currency: string, param = 'amount'): void {
  if (fitsMinorUnitStep(amount, currency)) return;
  const down = amount - (amount % 10);
  throw invalidRequest(
    `Invalid amount: ${amount}. Amounts in ${currency}, a three-decimal currency, must be evenly divisible by 10 ` +
      `(round to the nearest ten, for example ${down} or ${down + 10}). ` +
      'See https://docs.stripe.com/currencies#three-decimal for more information.',
    param,
  );
}

/**
 * Stripe's bounds on a charge amount: at least 1, the currency minimum, at most 99,999,999, and a last digit
 * of 0 in a three-decimal currency.
 */
export function checkChargeAmount(amount: number, currency: string, param = 'amount'): void {
  if (amount < 1) {
    throw invalidRequest(
      'This value must be greater than or equal to 1.',
      param,
      'parameter_invalid_integer',
    );
  }
  if (amount > MAX_AMOUNT) {
    throw invalidRequest(
      `Amount must be no more than ${formatAmount(MAX_AMOUNT, currency)} ${currency}`,
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

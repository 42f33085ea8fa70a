import { invalidRequest } from './stripe-error.js';

/** The shape of an address Stripe takes: something, `@`, a domain with a dot (`a@b` is refused). */
export const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Stripe checks every e-mail parameter it is given (`customer_email`, `receipt_email`, ...) and refuses one that
 * is not an address with 400 `email_invalid` on that param. `''` (which unsets `receipt_email` on an update) and
 * an absent value pass.
 */
export function checkEmail(value: unknown, param: string): void {
  if (typeof value === 'string' && value !== '' && !EMAIL.test(value)) {
    throw invalidRequest(`Invalid email address: ${value}`, param, 'email_invalid');
  }
}

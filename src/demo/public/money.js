// Amounts arrive in the currency's minor unit; Stripe's own list (not ISO's) says which have none.

/**
 * `formatMoney(2500, 'sgd', zero)` → "SGD 25.00" (in the browser's locale), `formatMoney(500, 'jpy', zero)`
 * → "¥500". `zeroDecimal` is the set of currencies counted in whole units.
 */
export function formatMoney(amount, currency, zeroDecimal, locale) {
  if (typeof amount !== 'number' || !currency) return '—';
  const code = currency.toUpperCase();
  const digits = zeroDecimal.has(currency.toLowerCase()) ? 0 : 2;
  const major = amount / 10 ** digits;
  try {
    return new Intl.NumberFormat(locale, {
      style: 'currency',
      currency: code,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(major);
  } catch {
    // a code this browser's Intl does not know
    return `${major.toFixed(digits)} ${code}`;
  }
}

// Amounts arrive in the currency's minor unit; Stripe's own lists (not ISO's) say which have none and which
// have three decimals.

/** The sets formatMoney needs, from /demo/config.json. */
export function minorUnits(config) {
  return {
    zeroDecimal: new Set(config.zeroDecimalCurrencies ?? []),
    threeDecimal: new Set(config.threeDecimalCurrencies ?? []),
  };
}

/**
 * `formatMoney(2500, 'sgd', units)` → "SGD 25.00" (in the browser's locale), `formatMoney(500, 'jpy', units)`
 * → "¥500", `formatMoney(5120, 'kwd', units)` → "KWD 5.120". `units` is what minorUnits(config) answers.
 */
export function formatMoney(amount, currency, units, locale) {
  if (typeof amount !== 'number' || !currency) return '—';
  const code = currency.toUpperCase();
  const lower = currency.toLowerCase();
  const digits = units.zeroDecimal.has(lower) ? 0 : units.threeDecimal.has(lower) ? 3 : 2;
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

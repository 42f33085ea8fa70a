// Amounts arrive in the currency's minor unit; Stripe's own lists (not ISO's) say which have none and which
// have three decimals.

/** The sets formatMoney needs, from /demo/config.json. */
export function minorUnits(config) {
  return {
    zeroDecimal: new Set(config.zeroDecimalCurrencies ?? []),
    threeDecimal: new Set(config.threeDecimalCurrencies ?? []),
    wholeHundreds: new Set(config.wholeHundredsCurrencies ?? []),
  };
}

/**
 * `formatMoney(2500, 'sgd', units)` → "SGD 25.00" (in the browser's locale), `formatMoney(500, 'jpy', units)`
 * → "¥500", `formatMoney(5120, 'kwd', units)` → "KWD 5.120", `formatMoney(150000, 'isk', units)` → "ISK 1,500". `units` is what minorUnits(config) answers.
 */
export function formatMoney(amount, currency, units, locale) {
  if (typeof amount !== 'number' || !currency) return '—';
  const code = currency.toUpperCase();
  const lower = currency.toLowerCase();
  const digits = units.zeroDecimal.has(lower) ? 0 : units.threeDecimal.has(lower) ? 3 : 2;
  const major = amount / 10 ** digits;
  // isk and ugx amounts are two-decimal values always ending in 00: shown as whole units.
  const shown = units.wholeHundreds?.has(lower) ? 0 : digits;
  try {
    return new Intl.NumberFormat(locale, {
      style: 'currency',
      currency: code,
      minimumFractionDigits: shown,
      maximumFractionDigits: shown,
    }).format(major);
  } catch {
    // a code this browser's Intl does not know
    return `${major.toFixed(shown)} ${code}`;
  }
}

/**
 * What Stripe says about currencies, in one place for the service and the sandbox: which codes card
 * payments accept, which have no minor unit (an amount of 500 jpy is ¥500, not ¥5.00), which have three
 * (an amount of 5120 kwd is 5.120 KWD), which take two-decimal amounts in whole units only (an amount of
 * 500 isk is 5 ISK), and the smallest charge Stripe allows.
 */

/** Currencies Stripe presents to card payments (ISO 4217, lower case). */
export const SUPPORTED_CURRENCIES: ReadonlySet<string> = new Set(
  (
    'usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn bzd cad cdf chf ' +
    'clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd hnl htg huf idr ' +
    'ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk ' +
    'mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp ' +
    'sle sos srd std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw'
  ).split(' '),
);

/**
 * Currencies whose API amounts are whole units (no cents). Stripe's zero-decimal list also names ugx, but its
 * special cases say the API still takes ugx as a two-decimal value (see WHOLE_HUNDREDS_CURRENCIES), so it is not
 * here: an amount of 500 ugx is 5 UGX.
 */
export const ZERO_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set(
  'bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf'.split(' '),
);

/**
 * Currencies that became zero-decimal but that the API, for backward compatibility, still takes as two-decimal
 * values whose last two digits are 00: 5 ISK is an amount of 500, and fractions cannot be charged
 * (docs.stripe.com/currencies#special-cases). (huf and twd, zero-decimal for payouts only, charge any amount.)
 */
export const WHOLE_HUNDREDS_CURRENCIES: ReadonlySet<string> = new Set(['isk', 'ugx']);

/**
 * Currencies with three decimals: amounts count thousandths. Stripe takes them for payment intents, refunds
 * and disputes only with a last digit of 0 ("round amounts to the nearest ten": 5.124 KWD must be sent as
 * 5120 or 5130), for its payment partners' sake (docs.stripe.com/currencies#three-decimal).
 */
export const THREE_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set('bhd jod kwd omr tnd'.split(' '));

/** Stripe's documented minimum charge amounts, in the currency's minor unit. */
export const MINIMUM_CHARGE: Readonly<Record<string, number>> = Object.freeze({
  usd: 50,
  aed: 200,
  aud: 50,
  bgn: 100,
  brl: 50,
  cad: 50,
  chf: 50,
  czk: 1500,
  dkk: 250,
  eur: 50,
  gbp: 30,
  hkd: 400,
  huf: 17500,
  inr: 50,
  jpy: 50,
  mxn: 1000,
  myr: 200,
  nok: 300,
  nzd: 50,
  pln: 200,
  ron: 200,
  sek: 300,
  sgd: 50,
  thb: 1000,
});

const SYMBOL: Readonly<Record<string, string>> = Object.freeze({
  usd: '$',
  aud: '$',
  cad: '$',
  nzd: '$',
  sgd: '$',
  hkd: '$',
  mxn: '$',
  eur: '€',
  gbp: '£',
  jpy: '¥',
  inr: '₹',
});

/** The largest amount Stripe takes in most currencies: eight digits (99,999,999 = 999,999.99 USD). */
export const MAX_AMOUNT = 99_999_999;

/** idr's: twelve digits (999,999,999,999 = 9,999,999,999.99 IDR). */
const MAX_AMOUNT_IDR = 999_999_999_999;

/**
 * The largest amount Stripe takes in `currency`: "up to twelve digits for IDR, and up to eight digits for all
 * other currencies" (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts). In idr eight digits stop at
 * 999,999.99 IDR, about 60 USD.
 */
export function maxAmount(currency: string): number {
  return currency === 'idr' ? MAX_AMOUNT_IDR : MAX_AMOUNT;
}

export function isSupportedCurrency(currency: string): boolean {
  return SUPPORTED_CURRENCIES.has(currency);
}

export function isZeroDecimal(currency: string): boolean {
  return ZERO_DECIMAL_CURRENCIES.has(currency);
}

export function isThreeDecimal(currency: string): boolean {
  return THREE_DECIMAL_CURRENCIES.has(currency);
}

/** How many decimals an amount's minor unit stands for: 0 (jpy), 2 (usd) or 3 (kwd). */
export function minorUnitDigits(currency: string): 0 | 2 | 3 {
  return isZeroDecimal(currency) ? 0 : isThreeDecimal(currency) ? 3 : 2;
}

/**
 * The step Stripe takes `currency`'s amounts in: 10 for a three-decimal currency (last digit 0), 100 for isk and
 * ugx (whole units written with two decimals), 1 for the others.
 */
export function minorUnitStep(currency: string): 1 | 10 | 100 {
  return isThreeDecimal(currency) ? 10 : WHOLE_HUNDREDS_CURRENCIES.has(currency) ? 100 : 1;
}

/** Whether Stripe takes `amount` in `currency`: a multiple of its minorUnitStep. */
export function fitsMinorUnitStep(amount: number, currency: string): boolean {
  return amount % minorUnitStep(currency) === 0;
}

/** `$1,234.50` / `¥500` / `5.120` (kwd) / `1,500` (150000 isk), as Stripe's messages print amounts. */
export function formatAmount(amount: number, currency: string): string {
  const digits = minorUnitDigits(currency);
  const major = amount / 10 ** digits;
  // isk and ugx have no fractions to show (an amount that has one is refused before it is shown).
  const shown = WHOLE_HUNDREDS_CURRENCIES.has(currency) ? 0 : digits;
  const text = major.toLocaleString('en-US', {
    minimumFractionDigits: shown,
    maximumFractionDigits: digits,
  });
  return `${SYMBOL[currency] ?? ''}${text}`;
}

import { invalidRequest } from './stripe-error.js';

/** Currencies Stripe presents to card payments (ISO 4217, lower case). */
const SUPPORTED = new Set(
  (
    'usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bif bmd bnd bob brl bsd bwp byn bzd cad cdf chf ' +
    'clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf gtq gyd hkd hnl htg huf idr ' +
    'ils inr isk jmd jpy kes kgs khr kmf krw kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk ' +
    'mxn myr mzn nad ngn nio nok npr nzd pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp ' +
    'sle sos srd std szl thb tjs top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw'
  ).split(' '),
);

const ZERO_DECIMAL = new Set('bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf'.split(' '));

/** Stripe's documented minimum charge amounts, in the currency's minor unit. */
const MINIMUM: Readonly<Record<string, number>> = Object.freeze({
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

export const MAX_AMOUNT = 99_999_999;

export function isZeroDecimal(currency: string): boolean {
  return ZERO_DECIMAL.has(currency);
}

/** `$1,234.50` style, as Stripe's messages print amounts. */
export function formatAmount(amount: number, currency: string): string {
  const major = isZeroDecimal(currency) ? amount : amount / 100;
  const digits = isZeroDecimal(currency) ? 0 : 2;
  const text = major.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  return `${SYMBOL[currency] ?? ''}${text}`;
}

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

/** Stripe's bounds on a charge amount: at least 1, the currency minimum, at most 99,999,999. */
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
}

import { describe, expect, it } from 'vitest';

interface MinorUnits {
  zeroDecimal: ReadonlySet<string>;
  threeDecimal: ReadonlySet<string>;
  wholeHundreds: ReadonlySet<string>;
}

// The demo's browser module is plain JavaScript (no declarations): imported by a path TypeScript leaves alone.
const moneyJs: string = '../../src/demo/public/money.js';
const { formatMoney, minorUnits } = (await import(moneyJs)) as {
  formatMoney(amount: number, currency: string, units: MinorUnits, locale?: string): string;
  minorUnits(config: {
    zeroDecimalCurrencies?: string[];
    threeDecimalCurrencies?: string[];
    wholeHundredsCurrencies?: string[];
  }): MinorUnits;
};

describe("the demo's formatMoney", () => {
  const units = minorUnits({
    zeroDecimalCurrencies: ['jpy'],
    threeDecimalCurrencies: ['bhd', 'jod', 'kwd', 'omr', 'tnd'],
    wholeHundredsCurrencies: ['isk', 'ugx'],
  });

  it('shows thousandths for three-decimal currencies', () => {
    expect(formatMoney(5120, 'kwd', units, 'en-US')).toMatch(/^KWD\s5\.120$/);
    expect(formatMoney(10, 'BHD', units, 'en-US')).toMatch(/^BHD\s0\.010$/);
  });

  it('shows cents for two-decimal currencies and whole units for zero-decimal ones', () => {
    expect(formatMoney(2500, 'sgd', units, 'en-US')).toMatch(/^SGD\s25\.00$/);
    expect(formatMoney(500, 'jpy', units, 'en-US')).toBe('¥500');
  });

  it('shows isk and ugx, whose amounts are two-decimal values ending in 00, in whole units', () => {
    expect(formatMoney(150_000, 'isk', units, 'en-US')).toMatch(/^ISK\s1,500$/);
    expect(formatMoney(500, 'ugx', units, 'en-US')).toMatch(/^UGX\s5$/);
  });
});

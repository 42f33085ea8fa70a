import { describe, expect, it } from 'vitest';

interface MinorUnits {
  zeroDecimal: ReadonlySet<string>;
  threeDecimal: ReadonlySet<string>;
}

// The demo's browser module is plain JavaScript (no declarations): imported by a path TypeScript leaves alone.
const moneyJs: string = '../../src/demo/public/money.js';
const { formatMoney, minorUnits } = (await import(moneyJs)) as {
  formatMoney(amount: number, currency: string, units: MinorUnits, locale?: string): string;
  minorUnits(config: { zeroDecimalCurrencies?: string[]; threeDecimalCurrencies?: string[] }): MinorUnits;
};

describe("the demo's formatMoney", () => {
  const units = minorUnits({
    zeroDecimalCurrencies: ['jpy'],
    threeDecimalCurrencies: ['bhd', 'jod', 'kwd', 'omr', 'tnd'],
  });

  it('shows thousandths for three-decimal currencies', () => {
    expect(formatMoney(5120, 'kwd', units, 'en-US')).toMatch(/^KWD\s5\.120$/);
    expect(formatMoney(10, 'BHD', units, 'en-US')).toMatch(/^BHD\s0\.010$/);
  });

  it('shows cents for two-decimal currencies and whole units for zero-decimal ones', () => {
    expect(formatMoney(2500, 'sgd', units, 'en-US')).toMatch(/^SGD\s25\.00$/);
    expect(formatMoney(500, 'jpy', units, 'en-US')).toBe('¥500');
  });
});

import { describe, expect, it } from 'vitest';
import {
  fitsMinorUnitStep,
  formatAmount,
  isSupportedCurrency,
  isThreeDecimal,
  isZeroDecimal,
  minorUnitDigits,
  THREE_DECIMAL_CURRENCIES,
} from '../../src/money/currencies.js';

const THREE = ['bhd', 'jod', 'kwd', 'omr', 'tnd'];

describe('currencies', () => {
  it('knows the five three-decimal currencies Stripe supports', () => {
    expect([...THREE_DECIMAL_CURRENCIES].sort()).toEqual(THREE);
    for (const c of THREE) {
      expect(isSupportedCurrency(c), c).toBe(true);
      expect(isThreeDecimal(c), c).toBe(true);
      expect(isZeroDecimal(c), c).toBe(false);
      expect(minorUnitDigits(c), c).toBe(3);
    }
    expect(isThreeDecimal('usd')).toBe(false);
    expect(minorUnitDigits('usd')).toBe(2);
    expect(minorUnitDigits('jpy')).toBe(0);
  });

  it('takes three-decimal amounts only in steps of 10, others in any step', () => {
    expect(fitsMinorUnitStep(5120, 'kwd')).toBe(true);
    expect(fitsMinorUnitStep(5124, 'kwd')).toBe(false);
    expect(fitsMinorUnitStep(5, 'tnd')).toBe(false);
    expect(fitsMinorUnitStep(0, 'bhd')).toBe(true);
    expect(fitsMinorUnitStep(5124, 'usd')).toBe(true);
    expect(fitsMinorUnitStep(7, 'jpy')).toBe(true);
  });

  it('formats three-decimal amounts with three decimals', () => {
    expect(formatAmount(5120, 'kwd')).toBe('5.120');
    expect(formatAmount(99_999_990, 'omr')).toBe('99,999.990');
    expect(formatAmount(10, 'jod')).toBe('0.010');
    expect(formatAmount(123_450, 'usd')).toBe('$1,234.50');
    expect(formatAmount(500, 'jpy')).toBe('¥500');
  });

  it('takes isk and ugx as two-decimal amounts in whole units (docs.stripe.com/currencies#special-cases)', () => {
    for (const c of ['isk', 'ugx']) {
      expect(isZeroDecimal(c), c).toBe(false);
      expect(minorUnitDigits(c), c).toBe(2);
      expect(fitsMinorUnitStep(150_000, c), c).toBe(true);
      expect(fitsMinorUnitStep(150_050, c), c).toBe(false);
    }
    // 150000 is 1,500 krónur, shown without the 00 that is always there.
    expect(formatAmount(150_000, 'isk')).toBe('1,500');
    expect(formatAmount(500, 'ugx')).toBe('5');
    // huf and twd are zero-decimal for payouts only: charges take any two-decimal amount.
    expect(fitsMinorUnitStep(17_550, 'huf')).toBe(true);
    expect(formatAmount(17_550, 'huf')).toBe('175.50');
  });
});

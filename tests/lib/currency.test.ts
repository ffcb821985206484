import { describe, expect, it } from 'vitest';
import { minorUnitExponent, toMinorUnits } from '../../src/lib/currency.ts';

describe('toMinorUnits: a store price in the currency minor units', () => {
  it('uses each currency exponent: two decimals by default, none for JPY, three for KWD', () => {
    expect(toMinorUnits(9.99, 'USD')).toEqual({ amount: 999, currency: 'usd' });
    expect(toMinorUnits(32.99, 'CAD')).toEqual({ amount: 3299, currency: 'cad' });
    expect(toMinorUnits(1200, 'JPY')).toEqual({ amount: 1200, currency: 'jpy' });
    expect(toMinorUnits(5500, 'krw')).toEqual({ amount: 5500, currency: 'krw' });
    expect(toMinorUnits(1.234, 'KWD')).toEqual({ amount: 1234, currency: 'kwd' });
    expect(toMinorUnits(2.5, 'BHD')).toEqual({ amount: 2500, currency: 'bhd' });
    expect(toMinorUnits(0, 'EUR')).toEqual({ amount: 0, currency: 'eur' });
    expect([minorUnitExponent('usd'), minorUnitExponent('JPY'), minorUnitExponent('kwd')]).toEqual([2, 0, 3]);
  });

  it('rounds half up on the decimals as written, not on their binary approximation', () => {
    expect(toMinorUnits(1.005, 'USD')?.amount).toBe(101); // 1.005 * 100 is 100.49999... in binary
    expect(toMinorUnits(0.29, 'USD')?.amount).toBe(29); // 0.29 * 100 is 28.999...
    expect(toMinorUnits(19.999, 'EUR')?.amount).toBe(2000);
    expect(toMinorUnits(1200.4, 'JPY')?.amount).toBe(1200);
    expect(toMinorUnits(1200.5, 'JPY')?.amount).toBe(1201);
    expect(toMinorUnits(1e-7, 'USD')?.amount).toBe(0);
  });

  it('is undefined for what is not a price', () => {
    for (const [amount, currency] of [
      [-1, 'USD'],
      [Number.NaN, 'USD'],
      [Number.POSITIVE_INFINITY, 'USD'],
      ['9.99', 'USD'],
      [null, 'USD'],
      [9.99, 'US'],
      [9.99, 'US$'],
      [9.99, null],
      [1e300, 'USD'],
    ]) {
      expect(toMinorUnits(amount, currency), `${amount} ${currency}`).toBeUndefined();
    }
  });
});

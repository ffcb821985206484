/**
 * ISO 4217 minor units: the currencies whose exponent is not 2 (zero-decimal ones like JPY and KRW,
 * three-decimal ones like KWD and BHD, four-decimal accounting units). Every other code has 2.
 */
const EXPONENTS: Readonly<Record<string, number>> = {
  bif: 0,
  clp: 0,
  djf: 0,
  gnf: 0,
  isk: 0,
  jpy: 0,
  kmf: 0,
  krw: 0,
  pyg: 0,
  rwf: 0,
  ugx: 0,
  uyi: 0,
  vnd: 0,
  vuv: 0,
  xaf: 0,
  xof: 0,
  xpf: 0,
  bhd: 3,
  iqd: 3,
  jod: 3,
  kwd: 3,
  lyd: 3,
  omr: 3,
  tnd: 3,
  clf: 4,
  uyw: 4,
};

/** How many decimals a currency's minor unit has (`usd` 2, `jpy` 0, `kwd` 3). */
export const minorUnitExponent = (currency: string) => EXPONENTS[currency.toLowerCase()] ?? 2;

/**
 * An amount in major units (`9.99` USD, `1200` JPY, `1.234` KWD, as stores report prices) in the currency's
 * minor units (999, 1200, 1234), rounded half up on the decimal digits as written, so that 1.005 USD is 101
 * and not the 100 that binary floating point would give. Undefined when it is not a price: negative, not
 * finite, not a three-letter code, or beyond exact integers. The currency comes back lower case.
 */
export function toMinorUnits(
  amount: unknown,
  currency: unknown,
): { amount: number; currency: string } | undefined {
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) return undefined;
  if (typeof currency !== 'string' || !/^[A-Za-z]{3}$/.test(currency)) return undefined;
  const code = currency.toLowerCase();
  const exponent = minorUnitExponent(code);
  const written = String(amount);
  let minor: number;
  if (/e/i.test(written)) {
    minor = Math.round(amount * 10 ** exponent);
  } else {
    const [whole, fraction = ''] = written.split('.');
    const digits = fraction.padEnd(exponent + 1, '0');
    const units = BigInt(whole + digits.slice(0, exponent)) + (Number(digits[exponent]) >= 5 ? 1n : 0n);
    minor = Number(units);
  }
  return Number.isSafeInteger(minor) ? { amount: minor, currency: code } : undefined;
}

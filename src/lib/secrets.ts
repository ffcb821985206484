import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Compares a secret a caller sent with the expected one in constant time, in the length as well: both are
 * hashed first, so neither the position of the first difference nor a length mismatch shows in the timing.
 */
export function safeEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

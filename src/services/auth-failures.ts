import { AppError } from '../errors.ts';

const WINDOW_MS = 60_000;
/** Addresses remembered at once; beyond it the oldest windows are forgotten (bounded memory under a flood). */
const MAX_ADDRESSES = 100_000;

export interface RateLimitedError extends AppError {
  /** Seconds until the caller may try again: the Retry-After header. */
  retryAfter: number;
}

/**
 * Failed authentications (a bad JWT, an unknown or malformed API key) counted per IP in one-minute
 * windows. Checked before any token is verified or any key looked up, so a flood of invented keys costs
 * the database nothing once an address is over the limit. `perMinute` 0 turns it off.
 */
export function createAuthFailureLimiter(perMinute: number, now: () => number = Date.now) {
  const windows = new Map<string, { count: number; start: number }>();

  function current(ip: string) {
    const w = windows.get(ip);
    if (w && now() - w.start < WINDOW_MS) return w;
    if (w) windows.delete(ip);
    return undefined;
  }

  return {
    /** Throws 429 `rate_limited` when `ip` has failed `perMinute` times in its current window. */
    assertAllowed(ip: string) {
      if (perMinute === 0) return;
      const w = current(ip);
      if (w && w.count >= perMinute) {
        const retryAfter = Math.max(1, Math.ceil((w.start + WINDOW_MS - now()) / 1000));
        throw Object.assign(
          new AppError(
            'rate_limited',
            `Too many failed authentications from this address; retry in ${retryAfter} s`,
          ),
          { retryAfter },
        ) as RateLimitedError;
      }
    },

    recordFailure(ip: string) {
      if (perMinute === 0) return;
      const w = current(ip);
      if (w) {
        w.count++;
        return;
      }
      if (windows.size >= MAX_ADDRESSES) {
        for (const [key, old] of windows) {
          if (windows.size < MAX_ADDRESSES && now() - old.start < WINDOW_MS) break;
          windows.delete(key);
        }
      }
      windows.set(ip, { count: 1, start: now() });
    },
  };
}
export type AuthFailureLimiter = ReturnType<typeof createAuthFailureLimiter>;

import { AppError } from '../errors.ts';
import { msg } from '../messages.ts';

const WINDOW_MS = 60_000;
/** Addresses remembered at once; beyond it the oldest windows are forgotten (bounded memory under a flood). */
const MAX_ADDRESSES = 100_000;

export interface RateLimitedError extends AppError {
  /** Seconds until the caller may try again: the Retry-After header. */
  retryAfter: number;
}

/**
 * Failed authentications (a bad JWT, an unknown or malformed API key) counted per IP in one-minute
 * windows. Once an address is over the limit, only credentials that can be checked without the database
 * get through (see the auth plugin): a flood of invented keys costs the database nothing, while callers
 * that share the address (a NAT, a proxy) with valid tokens or known keys keep working. `perMinute` 0
 * turns it off.
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
    /**
     * The 429 `rate_limited` to answer when `ip` has failed `perMinute` times in its current window
     * (undefined when it has not): callers throw it rather than verify anything that needs the database.
     */
    blocked(ip: string): RateLimitedError | undefined {
      if (perMinute === 0) return undefined;
      const w = current(ip);
      if (!w || w.count < perMinute) return undefined;
      const retryAfter = Math.max(1, Math.ceil((w.start + WINDOW_MS - now()) / 1000));
      return Object.assign(
        new AppError('rate_limited', msg('auth.too_many_failures', { seconds: retryAfter })),
        { retryAfter },
      );
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

/**
 * An Idempotency-Key for one operator action: made when the confirmation opens and kept until it closes, so
 * a double click or a retry after a lost answer replays the first result instead of acting twice, while
 * the same action confirmed again later (a second partial reversal) is a new request.
 */
export function newIdempotencyKey(action: string, targetId: string, random: string = crypto.randomUUID()) {
  return `console:${action}:${targetId}:${random}`.slice(0, 255);
}

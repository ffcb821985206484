import type { PurchaseStatus } from '../../http/schemas.ts';

export type { PurchaseStatus };

/** Statuses in which the purchase's credits were granted (refunds and disputes apply to these only). */
export const GRANTED: ReadonlySet<PurchaseStatus> = new Set([
  'completed',
  'partially_refunded',
  'refunded',
  'disputed',
]);
export const isGranted = (p: { status: PurchaseStatus }) => GRANTED.has(p.status);

/** The status a granted purchase has from its refunds alone (after a dispute is won, for instance). */
export function statusFromRefunds(credits: number, refundedCredits: number): PurchaseStatus {
  if (refundedCredits <= 0) return 'completed';
  return refundedCredits >= credits ? 'refunded' : 'partially_refunded';
}

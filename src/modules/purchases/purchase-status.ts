import { type Static, Type } from '@sinclair/typebox';

/** A purchase's status: the one definition (the API schema, the table type and the lifecycle use it). */
export const PurchaseStatusSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('completed'),
  Type.Literal('failed'),
  Type.Literal('expired'),
  Type.Literal('refunded'),
  Type.Literal('partially_refunded'),
  Type.Literal('disputed'),
]);
export type PurchaseStatus = Static<typeof PurchaseStatusSchema>;

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

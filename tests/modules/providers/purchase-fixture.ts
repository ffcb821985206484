import type { PurchaseRow } from '../../../src/db/database.ts';

/** A purchase row as the rules see it, for the pure rule tests (no database). */
export function purchase(fields: Partial<PurchaseRow> = {}): PurchaseRow {
  return {
    id: 'pur_1',
    user_id: 'user_1',
    package_id: 'pkg_1',
    provider: 'stripe',
    provider_ref: null,
    status: 'pending',
    credits: 100,
    price: 1000,
    currency: 'usd',
    credit_expiry_days: null,
    credits_reversed: 0,
    credits_disputed: 0,
    stripe_payment_intent_id: null,
    dispute_outcome: null,
    dispute_closed_at: null,
    created_at: new Date('2026-01-01T00:00:00Z'),
    completed_at: null,
    updated_at: new Date('2026-01-01T00:00:00Z'),
    ...fields,
  };
}

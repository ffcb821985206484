import { sql } from 'kysely';
import type { Executor, PurchaseRow } from '../../db/database.ts';
import type { PurchasesTable } from './purchases.tables.ts';
import { exactTime, olderThan } from '../../lib/keyset.ts';
import type { PackageRow } from '../catalog/index.ts';

/** A new purchase copies what the package is now: credits, price, currency (unless the buyer paid otherwise), expiry. */
export async function insertPurchase(
  ex: Executor,
  p: {
    id: string;
    userId: string;
    pkg: PackageRow;
    provider: PurchasesTable['provider'];
    providerRef: string | null;
    status: PurchasesTable['status'];
    /** What the buyer paid (minor units), when the provider says; else the package's price and currency. */
    price?: number;
    currency?: string;
  },
): Promise<PurchaseRow> {
  return ex
    .insertInto('purchases')
    .values({
      id: p.id,
      user_id: p.userId,
      package_id: p.pkg.id,
      provider: p.provider,
      provider_ref: p.providerRef,
      status: p.status,
      credits: p.pkg.credits,
      price: p.price ?? p.pkg.price,
      currency: p.currency ?? p.pkg.currency,
      credit_expiry_days: p.pkg.credit_expiry_days,
      stripe_payment_intent_id: null,
      completed_at: p.status === 'completed' ? new Date() : null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findPurchase(ex: Executor, id: string, forUpdate = false) {
  let q = ex.selectFrom('purchases').selectAll().where('id', '=', id);
  if (forUpdate) q = q.forUpdate();
  return q.executeTakeFirst();
}

/** Purchases by id, in one query (for `?expand=purchase`). */
export async function findPurchases(ex: Executor, ids: readonly string[]) {
  if (ids.length === 0) return [];
  return ex
    .selectFrom('purchases')
    .selectAll()
    .where('id', 'in', [...new Set(ids)])
    .execute();
}

export async function findPurchaseByProviderRef(
  ex: Executor,
  provider: PurchasesTable['provider'],
  providerRef: string,
  forUpdate = false,
) {
  let q = ex
    .selectFrom('purchases')
    .selectAll()
    .where('provider', '=', provider)
    .where('provider_ref', '=', providerRef);
  if (forUpdate) q = q.forUpdate();
  return q.executeTakeFirst();
}

export async function findPurchaseByPaymentIntent(ex: Executor, paymentIntentId: string, forUpdate = false) {
  let q = ex.selectFrom('purchases').selectAll().where('stripe_payment_intent_id', '=', paymentIntentId);
  if (forUpdate) q = q.forUpdate();
  return q.executeTakeFirst();
}

export type PurchaseChanges = Partial<
  Pick<
    PurchaseRow,
    | 'status'
    | 'provider_ref'
    | 'stripe_payment_intent_id'
    | 'completed_at'
    | 'credits_reversed'
    | 'credits_disputed'
    | 'price'
    | 'currency'
    | 'dispute_outcome'
    | 'dispute_closed_at'
  >
>;

export async function updatePurchase(
  ex: Executor,
  id: string,
  changes: PurchaseChanges,
): Promise<PurchaseRow> {
  return ex
    .updateTable('purchases')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function listPurchases(
  ex: Executor,
  userId: string,
  limit: number,
  after?: { createdAt: string; id: string },
) {
  let q = ex
    .selectFrom('purchases')
    .selectAll()
    .select(exactTime('created_at').as('created_at_exact'))
    .where('user_id', '=', userId)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (after) q = q.where(olderThan('created_at', 'id', { time: after.createdAt, id: after.id }));
  return q.execute();
}

/**
 * Serializes, until the transaction ends, every transaction working on one provider reference, including
 * one whose purchase does not exist yet (two deliveries of a new store transaction, or its refund racing
 * its grant): the second waits, then sees what the first committed.
 */
export async function lockProviderRef(
  ex: Executor,
  provider: PurchasesTable['provider'],
  providerRef: string,
) {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`${provider}:${providerRef}`}, 0))`.execute(ex);
}

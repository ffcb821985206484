import { sql } from 'kysely';
import { exactTime, olderThan } from '../../lib/keyset.ts';
import type { Executor } from '../../db/database.ts';

export interface PackageValues {
  name: string;
  description: string | null;
  credits: number;
  price: number;
  currency: string;
  is_active: boolean;
  stripe_price_id: string | null;
  credit_expiry_days: number | null;
}

/** Packages with their RevenueCat product ids (the side table is what keeps a product id unique). */
function selectPackages(ex: Executor) {
  return ex
    .selectFrom('credit_packages as p')
    .selectAll('p')
    .select(
      sql<string[]>`coalesce((select array_agg(r.product_id order by r.product_id)
        from package_revenuecat_products r where r.package_id = p.id), '{}')`.as('revenuecat_product_ids'),
    );
}
export type PackageRow = Awaited<ReturnType<ReturnType<typeof selectPackages>['executeTakeFirstOrThrow']>>;

export async function findPackage(ex: Executor, id: string, forUpdate = false) {
  let q = selectPackages(ex).where('p.id', '=', id);
  if (forUpdate) q = q.forUpdate('p');
  return q.executeTakeFirst();
}

/** Packages by id, in one query (for `?expand=package`). */
export async function findPackages(ex: Executor, ids: readonly string[]) {
  if (ids.length === 0) return [];
  return selectPackages(ex)
    .where('p.id', 'in', [...new Set(ids)])
    .execute();
}

export async function listPackages(
  ex: Executor,
  opts: { limit: number; includeInactive: boolean; after?: { createdAt: string; id: string } },
) {
  let q = selectPackages(ex)
    .select(exactTime('p.created_at').as('created_at_exact'))
    .orderBy('p.created_at', 'desc')
    .orderBy('p.id', 'desc')
    .limit(opts.limit + 1);
  if (!opts.includeInactive) q = q.where('p.is_active', '=', true);
  const after = opts.after;
  if (after) q = q.where(olderThan('p.created_at', 'p.id', { time: after.createdAt, id: after.id }));
  return q.execute();
}

export async function insertPackage(ex: Executor, id: string, values: PackageValues) {
  await ex
    .insertInto('credit_packages')
    .values({ id, ...values })
    .execute();
}

export async function updatePackage(ex: Executor, id: string, values: Partial<PackageValues>) {
  await ex
    .updateTable('credit_packages')
    .set({ ...values, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .execute();
}

export async function replaceProductIds(ex: Executor, packageId: string, productIds: readonly string[]) {
  await ex.deleteFrom('package_revenuecat_products').where('package_id', '=', packageId).execute();
  if (productIds.length > 0) {
    await ex
      .insertInto('package_revenuecat_products')
      .values(productIds.map((product_id) => ({ product_id, package_id: packageId })))
      .execute();
  }
}

export async function productOwners(ex: Executor, productIds: readonly string[], exceptPackageId?: string) {
  if (productIds.length === 0) return [];
  let q = ex
    .selectFrom('package_revenuecat_products')
    .selectAll()
    .where('product_id', 'in', [...productIds]);
  if (exceptPackageId) q = q.where('package_id', '<>', exceptPackageId);
  return q.execute();
}

/** The package that sells a store product id (RevenueCat), if any. */
export async function findPackageByProductId(ex: Executor, productId: string) {
  return selectPackages(ex)
    .innerJoin('package_revenuecat_products as m', 'm.package_id', 'p.id')
    .where('m.product_id', '=', productId)
    .executeTakeFirst();
}

export async function hasPurchases(ex: Executor, packageId: string): Promise<boolean> {
  const row = await ex
    .selectFrom('purchases')
    .select('id')
    .where('package_id', '=', packageId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function deletePackage(ex: Executor, id: string) {
  await ex.deleteFrom('credit_packages').where('id', '=', id).execute();
}

/**
 * Serializes, until the transaction ends, a RevenueCat purchase of a product with a save of that product's
 * mapping: a purchase parked as unmapped is always seen by the save that maps it. Ids in sorted order, so two
 * saves never wait on each other crosswise.
 */
export async function lockProductMapping(ex: Executor, ...productIds: string[]) {
  for (const id of [...productIds].sort()) {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`revenuecat:product:${id}`}, 0))`.execute(ex);
  }
}

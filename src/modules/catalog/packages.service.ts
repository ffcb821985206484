import type { Db, Executor } from '../../db/database.ts';
import {
  deletePackage,
  findPackage,
  hasPurchases,
  insertPackage,
  listPackages,
  type PackageRow,
  type PackageValues,
  lockProductMapping,
  productOwners,
  replaceProductIds,
  updatePackage,
} from './packages.repository.ts';
import { badRequest, conflict, notFound } from '../../errors.ts';
import { newId } from '../../lib/ids.ts';
import { decodeCursor, toPage } from '../../lib/pagination.ts';

export interface PackageInput {
  name: string;
  description?: string | null;
  credits: number;
  price: number;
  currency: string;
  isActive?: boolean;
  stripePriceId?: string | null;
  revenuecatProductIds?: string[];
  creditExpiryDays?: number | null;
}

const ISO_CURRENCIES = new Set(Intl.supportedValuesOf('currency').map((c) => c.toLowerCase()));

export const toPackage = (row: PackageRow) => ({
  id: row.id,
  name: row.name,
  description: row.description,
  credits: row.credits,
  price: row.price,
  currency: row.currency,
  isActive: row.is_active,
  stripePriceId: row.stripe_price_id,
  revenuecatProductIds: row.revenuecat_product_ids,
  creditExpiryDays: row.credit_expiry_days,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});
export type Package = ReturnType<typeof toPackage>;

/** When credits granted now for a package with `creditExpiryDays` expire (null: never). */
export function expiryFor(days: number | null, from = new Date()): Date | null {
  return days === null ? null : new Date(from.getTime() + days * 86_400_000);
}

function checkCurrency(currency: string | undefined) {
  if (currency !== undefined && !ISO_CURRENCIES.has(currency)) {
    throw badRequest('package.currency_invalid', { currency });
  }
}

async function checkProductIds(db: Db, ids: string[] | undefined, packageId?: string) {
  if (!ids) return;
  if (new Set(ids).size !== ids.length) throw badRequest('package.product_ids_repeat');
  const taken = await productOwners(db, ids, packageId);
  if (taken.length > 0) {
    const t = taken[0] as { product_id: string; package_id: string };
    throw conflict('package.product_id_taken', { productId: t.product_id, packageId: t.package_id });
  }
}

export interface PackagesServiceOptions {
  /**
   * Called in the transaction that maps RevenueCat products to a package, holding their mapping locks:
   * purchases of these products parked as unmapped are granted there.
   */
  onProductsMapped?: (trx: Executor, productIds: string[]) => Promise<void>;
}

export function createPackagesService(db: Db, opts: PackagesServiceOptions = {}) {
  async function mapped(trx: Executor, productIds: string[] | undefined) {
    if (!productIds?.length || !opts.onProductsMapped) return;
    await lockProductMapping(trx, ...productIds);
    await opts.onProductsMapped(trx, productIds);
  }

  return {
    async create(input: PackageInput): Promise<Package> {
      checkCurrency(input.currency);
      await checkProductIds(db, input.revenuecatProductIds);
      const id = newId('pkg');
      await db.transaction().execute(async (trx) => {
        await insertPackage(trx, id, {
          name: input.name,
          description: input.description ?? null,
          credits: input.credits,
          price: input.price,
          currency: input.currency,
          is_active: input.isActive ?? true,
          stripe_price_id: input.stripePriceId ?? null,
          credit_expiry_days: input.creditExpiryDays ?? null,
        });
        await replaceProductIds(trx, id, input.revenuecatProductIds ?? []);
        await mapped(trx, input.revenuecatProductIds);
      });
      return this.get(id);
    },

    async get(id: string): Promise<Package> {
      const row = await findPackage(db, id);
      if (!row) throw notFound('package.not_found');
      return toPackage(row);
    },

    async list(limit: number, includeInactive: boolean, cursor?: string) {
      const after = decodeCursor(cursor, ['timestamp', 'string']) as [string, string] | undefined;
      const rows = await listPackages(db, {
        limit,
        includeInactive,
        after: after && { createdAt: after[0], id: after[1] },
      });
      return toPage(rows, limit, toPackage, (r) => [r.created_at_exact, r.id]);
    },

    async update(id: string, input: Partial<PackageInput>): Promise<Package> {
      checkCurrency(input.currency);
      await checkProductIds(db, input.revenuecatProductIds, id);
      const values: Partial<PackageValues> = {};
      if (input.name !== undefined) values.name = input.name;
      if (input.description !== undefined) values.description = input.description;
      if (input.credits !== undefined) values.credits = input.credits;
      if (input.price !== undefined) values.price = input.price;
      if (input.currency !== undefined) values.currency = input.currency;
      if (input.isActive !== undefined) values.is_active = input.isActive;
      if (input.stripePriceId !== undefined) values.stripe_price_id = input.stripePriceId;
      if (input.creditExpiryDays !== undefined) values.credit_expiry_days = input.creditExpiryDays;
      await db.transaction().execute(async (trx) => {
        if (!(await findPackage(trx, id, true))) throw notFound('package.not_found');
        await updatePackage(trx, id, values);
        if (input.revenuecatProductIds) {
          await replaceProductIds(trx, id, input.revenuecatProductIds);
          await mapped(trx, input.revenuecatProductIds);
        }
      });
      return this.get(id);
    },

    /** Deletes a package; one that has purchases is deactivated instead, so its history stays intact. */
    async remove(id: string): Promise<{ deleted: boolean; deactivated: boolean; package: Package }> {
      return db.transaction().execute(async (trx) => {
        const row = await findPackage(trx, id, true);
        if (!row) throw notFound('package.not_found');
        if (await hasPurchases(trx, id)) {
          await updatePackage(trx, id, { is_active: false });
          const updated = (await findPackage(trx, id)) as PackageRow;
          return { deleted: false, deactivated: true, package: toPackage(updated) };
        }
        await deletePackage(trx, id);
        return { deleted: true, deactivated: false, package: toPackage(row) };
      });
    },
  };
}
export type PackagesService = ReturnType<typeof createPackagesService>;

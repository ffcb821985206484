import type { Db, PurchaseRow } from '../../db/database.ts';
import { conflict, notFound } from '../../errors.ts';
import { newId } from '../../lib/ids.ts';
import { decodeCursor, toPage } from '../../lib/pagination.ts';
import { findPackage, findPackages, type Package, toPackage } from '../catalog/index.ts';
import type { LedgerEntry } from '../ledger/index.ts';
import type { PurchaseLifecycle } from './purchase-lifecycle.ts';
import { findPurchase, findPurchases, listPurchases } from './purchases.repository.ts';

export const toPurchase = (row: PurchaseRow) => ({
  id: row.id,
  userId: row.user_id,
  packageId: row.package_id,
  provider: row.provider,
  providerRef: row.provider_ref,
  status: row.status,
  credits: row.credits,
  price: row.price,
  currency: row.currency,
  creditsReversed: row.credits_reversed,
  createdAt: row.created_at.toISOString(),
  completedAt: row.completed_at?.toISOString() ?? null,
});
export type Purchase = ReturnType<typeof toPurchase>;

/** `?expand=` values of purchase reads. */
export type PurchaseExpand = 'package';
export type ExpandedPurchase = Purchase & { package?: Package };

/**
 * Purchases with `package` (the package as it is now) beside `packageId` when `expand` asks for it.
 * One query for the whole page. Packages with purchases are never deleted, only deactivated.
 */
export async function expandPurchases(
  db: Db,
  purchases: Purchase[],
  expand: readonly PurchaseExpand[] = [],
): Promise<ExpandedPurchase[]> {
  if (!expand.includes('package')) return purchases;
  const packages = new Map(
    (
      await findPackages(
        db,
        purchases.map((p) => p.packageId),
      )
    ).map((row) => [row.id, toPackage(row)]),
  );
  return purchases.map((p) => {
    const pkg = packages.get(p.packageId);
    return pkg ? { ...p, package: pkg } : p;
  });
}

/** Purchase rows by id, as API objects (for a ledger's `?expand=purchase`). */
export async function purchasesById(db: Db, ids: readonly string[]): Promise<Map<string, Purchase>> {
  return new Map((await findPurchases(db, ids)).map((row) => [row.id, toPurchase(row)]));
}

/** Purchase reads, and the dev purchase. */
export function createPurchasesService(db: Db, lifecycle: PurchaseLifecycle) {
  return {
    async list(userId: string, limit: number, cursor?: string, expand?: readonly PurchaseExpand[]) {
      const after = decodeCursor(cursor, ['timestamp', 'string']) as [string, string] | undefined;
      const rows = await listPurchases(db, userId, limit, after && { createdAt: after[0], id: after[1] });
      const page = toPage(rows, limit, toPurchase, (r) => [r.created_at_exact, r.id]);
      return { items: await expandPurchases(db, page.items, expand), nextCursor: page.nextCursor };
    },

    /** One of `userId`'s purchases; another user's purchase is 404, as if it did not exist. */
    async get(userId: string, purchaseId: string, expand?: readonly PurchaseExpand[]) {
      const row = await findPurchase(db, purchaseId);
      if (!row || row.user_id !== userId) throw notFound('purchase.not_found');
      const [purchase] = await expandPurchases(db, [toPurchase(row)], expand);
      return purchase as ExpandedPurchase;
    },

    /**
     * DEV ONLY: grants a package without payment, as a completed `dev` purchase, in one transaction, through
     * the purchase lifecycle like any provider's purchase.
     */
    async devPurchase(
      userId: string,
      packageId: string,
    ): Promise<{ purchase: Purchase; entry: LedgerEntry; balance: number }> {
      return db.transaction().execute(async (trx) => {
        const pkg = await findPackage(trx, packageId, true);
        if (!pkg) throw notFound('package.not_found');
        if (!pkg.is_active) throw conflict('package.inactive');
        const id = newId('pur');
        const { purchase, granted } = await lifecycle.createCompleted(
          trx,
          { id, userId, pkg, provider: 'dev', providerRef: null },
          {
            key: `dev:purchase:${id}`,
            reason: `Dev purchase of ${pkg.name}`,
            metadata: { packageId: pkg.id },
          },
        );
        return { purchase: toPurchase(purchase), entry: granted.entry, balance: granted.balance };
      });
    },
  };
}
export type PurchasesService = ReturnType<typeof createPurchasesService>;

import type { Executor, PurchaseRow } from '../../db/database.ts';
import { countReversals, type LedgerOutcome, type LedgerService } from '../ledger/index.ts';
import { expiryFor, type PackageRow } from '../catalog/index.ts';
import { insertPurchase, type PurchaseChanges, updatePurchase } from './purchases.repository.ts';
import { newId } from '../../lib/ids.ts';
import type { Applied, EntryFields, PurchaseAction } from './purchase-actions.ts';
import { about, createDisputes, createRefunds } from './purchase-reversals.ts';

export { GRANTED, isGranted } from './purchase-status.ts';
export { MAX_REFUND_CYCLES } from './purchase-reversals.ts';

/** Records provider references (session, PaymentIntent) without a status change. */
async function remember(ex: Executor, p: PurchaseRow, changes: PurchaseChanges): Promise<PurchaseRow> {
  if (Object.keys(changes).length === 0) return p;
  return updatePurchase(ex, p.id, changes);
}

/** A purchase that will not be paid: `failed` or `expired`. Only a pending purchase changes. */
async function close(
  ex: Executor,
  p: PurchaseRow,
  status: 'failed' | 'expired',
  refs: PurchaseChanges,
): Promise<Applied> {
  if (p.status !== 'pending') {
    return { purchase: p, changed: false, note: `purchase is ${p.status}: left as it is` };
  }
  const purchase = await updatePurchase(ex, p.id, { ...refs, status });
  return { purchase, changed: true, note: `purchase ${status}` };
}

/**
 * The purchase lifecycle: every change of a purchase's status, and the reversal accounting, in one place.
 * Every change is an UPDATE of `purchases.status` (triggers on the table see each one). Callers hold the
 * purchase's row lock (or the provider reference's lock, for a purchase not created yet). Providers decide
 * what to do in pure rules (a PurchaseAction); `apply` does it.
 */
export function createPurchaseLifecycle(ledger: LedgerService) {
  const refunds = createRefunds(ledger);
  const disputes = createDisputes(ledger);

  /** Grants a pending (or failed/expired, but paid after all) purchase once, and marks it completed. */
  async function complete(
    ex: Executor,
    p: PurchaseRow,
    entry: EntryFields,
    refs: PurchaseChanges,
  ): Promise<Applied> {
    // What the buyer paid is on the purchase before its grant: whatever reads the purchase's price for the
    // credits granted (lots, reports) sees the paid one.
    const { price, currency, ...rest } = refs;
    if (price !== undefined || currency !== undefined) await updatePurchase(ex, p.id, { price, currency });
    await ledger.grant(
      { ...about(p, entry.key, entry), amount: p.credits, expiresAt: expiryFor(p.credit_expiry_days) },
      ex,
    );
    const purchase = await updatePurchase(ex, p.id, {
      ...rest,
      status: 'completed',
      completed_at: new Date(),
    });
    return { purchase, changed: true, note: `granted ${p.credits} credits` };
  }

  return {
    /** Applies a provider's decision to a purchase (locked by the caller), in the caller's transaction. */
    async apply(ex: Executor, p: PurchaseRow, action: PurchaseAction): Promise<Applied> {
      switch (action.type) {
        case 'remember':
          return { purchase: await remember(ex, p, action.refs), changed: false, note: '' };
        case 'grant':
          return complete(ex, p, action.entry, action.refs);
        case 'markFailed':
          return close(ex, p, 'failed', action.refs);
        case 'markExpired':
          return close(ex, p, 'expired', action.refs);
        case 'clawBackTo':
          return refunds.clawBackTo(ex, p, action);
        case 'clawBackAll':
          return refunds.clawBackAll(ex, p, action.entry);
        case 'grantBack':
          return refunds.grantBack(ex, p, action.entry);
        case 'disputeOpened':
          return disputes.disputeOpened(ex, p, action);
        case 'disputeWon':
          return disputes.disputeWon(ex, p, action);
        case 'disputeLost':
          return disputes.disputeLost(ex, p, action);
      }
    },

    /** A purchase created already paid (a store purchase, a dev grant) and its grant; `replayed` when granted before. */
    async createCompleted(
      ex: Executor,
      input: {
        existing?: PurchaseRow;
        /** The new purchase's id, when the caller needs it before (a grant key naming it); else a new one. */
        id?: string;
        userId: string;
        /** The package sold, for a new purchase (a snapshot of it is taken); unused with `existing`. */
        pkg?: PackageRow;
        provider: PurchaseRow['provider'];
        providerRef: string | null;
        /** What the buyer paid (minor units), when the provider says; else the package's price. */
        paid?: { price: number; currency: string };
      },
      grant: EntryFields,
    ): Promise<{ purchase: PurchaseRow; granted: LedgerOutcome }> {
      if (!input.existing && !input.pkg)
        throw new Error('createCompleted needs an existing purchase or a package');
      const purchase =
        input.existing ??
        (await insertPurchase(ex, {
          id: input.id ?? newId('pur'),
          userId: input.userId,
          pkg: input.pkg as PackageRow,
          provider: input.provider,
          providerRef: input.providerRef,
          status: 'completed',
          ...input.paid,
        }));
      const granted = await ledger.grant(
        {
          ...about(purchase, grant.key, grant),
          amount: purchase.credits,
          expiresAt: expiryFor(purchase.credit_expiry_days),
        },
        ex,
      );
      return { purchase, granted };
    },

    /** How many refunds (reversal entries) a purchase has had. */
    refundCount: (ex: Executor, p: PurchaseRow) => countReversals(ex, p.user_id, p.id),

    /** Marks a purchase failed outside any provider event (its Checkout Session could not be created). */
    async markFailed(ex: Executor, purchaseId: string) {
      await updatePurchase(ex, purchaseId, { status: 'failed' });
    },
  };
}

export type PurchaseLifecycle = ReturnType<typeof createPurchaseLifecycle>;

import type { Executor, PurchaseRow, PurchaseStatus } from '../../db/database.ts';
import {
  countReversals,
  findEntryByIdempotencyKey,
  lastReversalOf,
  type LedgerOutcome,
  type LedgerService,
} from '../ledger/index.ts';
import { expiryFor, type PackageRow } from '../catalog/index.ts';
import { insertPurchase, type PurchaseChanges, updatePurchase } from './purchases.repository.ts';
import { newId } from '../../lib/ids.ts';

/** Statuses in which the purchase's credits were granted (refunds and disputes apply to these only). */
export const GRANTED: ReadonlySet<PurchaseStatus> = new Set([
  'completed',
  'partially_refunded',
  'refunded',
  'disputed',
]);
export const isGranted = (p: PurchaseRow) => GRANTED.has(p.status);

/** A refund and its reversal alternate on one purchase; more cycles than this are left to an operator. */
export const MAX_REFUND_CYCLES = 20;

/** The status a granted purchase has from its refunds alone (after a dispute is won, for instance). */
function statusFromRefunds(credits: number, refundedCredits: number): PurchaseStatus {
  if (refundedCredits <= 0) return 'completed';
  return refundedCredits >= credits ? 'refunded' : 'partially_refunded';
}

/**
 * Writes with the first unused key of a series (`base`, `base:2`, `base:3`, ...). Refunds and reversals
 * alternate on a purchase, so the n-th refund of a transaction needs its own key; a used key answers a
 * replay (nothing written), which is how the loop learns that cycle is done.
 */
async function withFreshKey(
  base: string,
  write: (key: string) => Promise<LedgerOutcome>,
): Promise<LedgerOutcome | null> {
  for (let n = 1; n <= MAX_REFUND_CYCLES; n++) {
    const outcome = await write(n === 1 ? base : `${base}:${n}`);
    if (!outcome.replayed) return outcome;
  }
  return null;
}

interface GrantFields {
  /** The grant's idempotency key: the one thing that makes a purchase granted once, whoever asks. */
  key: string;
  reason: string;
  metadata: Record<string, unknown>;
}

/**
 * The purchase lifecycle: every change of a purchase's status, and the reversal accounting, in one place.
 * Every change is an UPDATE of `purchases.status` (triggers on the table see each one). Callers hold the
 * purchase's row lock (or the provider reference's lock, for a purchase not created yet).
 *
 * Accounting on the purchase row:
 * - `credits_reversed`: credits requested back from this purchase and still standing, for refunds and for an
 *   open dispute. What was requested counts, including the part the balance could not cover
 *   (`metadata.uncollected` on the entry): the next refund increment then asks only for its own share, rather
 *   than chasing credits the user has since bought elsewhere.
 * - `credits_disputed`: the part of `credits_reversed` that the open dispute requested.
 */
export function createPurchaseLifecycle(ledger: LedgerService) {
  /** What every ledger call about a purchase says: its user, provider, id, and the caller's key and reason. */
  const about = (p: PurchaseRow, key: string, m: { reason: string; metadata: Record<string, unknown> }) => ({
    userId: p.user_id,
    source: p.provider,
    purchaseId: p.id,
    idempotencyKey: key,
    reason: m.reason,
    metadata: m.metadata,
  });

  return {
    /** Records provider references (session, PaymentIntent) without a status change. */
    async remember(ex: Executor, p: PurchaseRow, changes: PurchaseChanges): Promise<PurchaseRow> {
      if (Object.keys(changes).length === 0) return p;
      return updatePurchase(ex, p.id, changes);
    },

    /** Grants a pending (or failed/expired, but paid after all) purchase once, and marks it completed. */
    async complete(
      ex: Executor,
      p: PurchaseRow,
      grant: GrantFields,
      refs: PurchaseChanges = {},
    ): Promise<PurchaseRow> {
      await ledger.grant(
        {
          ...about(p, grant.key, grant),
          amount: p.credits,
          expiresAt: expiryFor(p.credit_expiry_days),
        },
        ex,
      );
      return updatePurchase(ex, p.id, { ...refs, status: 'completed', completed_at: new Date() });
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
      },
      grant: GrantFields,
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

    /** A purchase that will not be paid: `failed` or `expired`. Only a pending purchase changes. */
    async close(
      ex: Executor,
      p: PurchaseRow,
      status: 'failed' | 'expired',
      refs: PurchaseChanges = {},
    ): Promise<PurchaseRow | null> {
      if (p.status !== 'pending') return null;
      return updatePurchase(ex, p.id, { ...refs, status });
    },

    /**
     * Refunds up to `targetCredits` of the purchase in total (a cumulative target, as Stripe reports
     * `amount_refunded`); `full` when the whole payment is refunded. An open dispute covers the increment first.
     */
    async refundTo(
      ex: Executor,
      p: PurchaseRow,
      r: {
        targetCredits: number;
        full: boolean;
        key: string;
        reason: string;
        metadata: Record<string, unknown>;
      },
    ): Promise<{ purchase: PurchaseRow; note: string }> {
      const refundedBefore = p.credits_reversed - p.credits_disputed;
      const increment = r.targetCredits - refundedBefore;
      if (increment <= 0) {
        return { purchase: p, note: `no new refund: ${refundedBefore} credits already reversed for refunds` };
      }
      // While a dispute is open it already took the rest back: the refund is covered by that first.
      const fromDispute = Math.min(increment, p.credits_disputed);
      const toTake = increment - fromDispute;
      let taken = 0;
      if (toTake > 0) {
        const result = await ledger.clawback(
          {
            ...about(p, r.key, r),
            amount: toTake,
          },
          ex,
        );
        taken = result.taken;
      }
      const status: PurchaseStatus =
        p.status === 'disputed' ? 'disputed' : r.full ? 'refunded' : 'partially_refunded';
      const purchase = await updatePurchase(ex, p.id, {
        status,
        credits_reversed: p.credits_reversed + toTake,
        credits_disputed: p.credits_disputed - fromDispute,
      });
      return {
        purchase,
        note: `refund to ${r.targetCredits} of ${p.credits} credits: requested ${toTake}, took ${taken}`,
      };
    },

    /** A dispute takes back the rest of the purchase; `key` makes it once per dispute. */
    async disputeOpened(
      ex: Executor,
      p: PurchaseRow,
      d: { disputeId: string; key: string; reason: string; metadata: Record<string, unknown> },
    ): Promise<{ purchase: PurchaseRow; note: string }> {
      if (p.status === 'disputed')
        return { purchase: p, note: 'a dispute is already open for this purchase' };
      const rest = p.credits - p.credits_reversed;
      let taken = 0;
      if (rest > 0) {
        const result = await ledger.clawback(
          {
            ...about(p, d.key, d),
            amount: rest,
          },
          ex,
        );
        taken = result.taken;
      }
      const purchase = await updatePurchase(ex, p.id, {
        status: 'disputed',
        credits_reversed: p.credits_reversed + rest,
        credits_disputed: rest,
      });
      return { purchase, note: `dispute ${d.disputeId}: requested ${rest}, took ${taken}` };
    },

    /** A dispute won: grants back exactly what the dispute's clawback took, less what refunds took over since. */
    async disputeWon(
      ex: Executor,
      p: PurchaseRow,
      d: {
        disputeId: string;
        openedKey: string;
        key: string;
        reason: string;
        metadata: Record<string, unknown>;
      },
    ): Promise<{ purchase: PurchaseRow; giveBack: number }> {
      const entry = await findEntryByIdempotencyKey(ex, p.user_id, d.openedKey);
      const giveBack = Math.min(entry ? -entry.amount : 0, p.credits_disputed);
      if (giveBack > 0) {
        await ledger.grant(
          {
            ...about(p, d.key, d),
            amount: giveBack,
            // The credits come back with the expiry they had.
            expiresAt: expiryFor(p.credit_expiry_days, p.completed_at ?? new Date()),
          },
          ex,
        );
      }
      const refundedCredits = p.credits_reversed - p.credits_disputed;
      const purchase = await updatePurchase(ex, p.id, {
        status: statusFromRefunds(p.credits, refundedCredits),
        credits_reversed: refundedCredits,
        credits_disputed: 0,
      });
      return { purchase, giveBack };
    },

    /** Refunds the whole purchase (a store refund): the n-th refund of a purchase gets key `keyBase:n`. */
    async refundAll(
      ex: Executor,
      p: PurchaseRow,
      r: { keyBase: string; reason: string; metadata: Record<string, unknown> },
    ): Promise<{ requested: number; taken: number } | null> {
      const amount = p.credits - p.credits_reversed;
      const taken = await withFreshKey(r.keyBase, (key) =>
        ledger.clawback(
          {
            ...about(p, key, r),
            amount,
          },
          ex,
        ),
      );
      if (!taken) return null;
      // creditsReversed counts what was asked back; what the balance could not cover is the entry's
      // metadata.uncollected, and a reversal of this refund grants back only what the entry took.
      await updatePurchase(ex, p.id, { status: 'refunded', credits_reversed: p.credits_reversed + amount });
      return { requested: amount, taken: 0 - taken.entry.amount };
    },

    /** Reverses the last refund: grants back what it took; the purchase is completed again. */
    async reverseRefund(
      ex: Executor,
      p: PurchaseRow,
      r: { keyBase: string; reason: string; metadata: Record<string, unknown> },
    ): Promise<{ granted: number } | null> {
      const refunded = await lastReversalOf(ex, p.user_id, p.id);
      const amount = refunded ? 0 - refunded.amount : 0;
      if (amount > 0) {
        const granted = await withFreshKey(r.keyBase, (key) =>
          ledger.grant(
            {
              ...about(p, key, r),
              amount,
              expiresAt: expiryFor(p.credit_expiry_days),
            },
            ex,
          ),
        );
        if (!granted) return null;
      }
      await updatePurchase(ex, p.id, { status: 'completed', credits_reversed: 0 });
      return { granted: amount };
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

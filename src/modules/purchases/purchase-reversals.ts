import type { Executor, PurchaseRow } from '../../db/database.ts';
import {
  findEntryByIdempotencyKey,
  lastReversalOf,
  type LedgerOutcome,
  type LedgerService,
} from '../ledger/index.ts';
import { expiryFor } from '../catalog/index.ts';
import type { Applied, EntryFields, SeriesFields } from './purchase-actions.ts';
import { type PurchaseStatus, statusFromRefunds } from './purchase-status.ts';
import { updatePurchase } from './purchases.repository.ts';

/** A refund and its reversal alternate on one purchase; more cycles than this are left to an operator. */
export const MAX_REFUND_CYCLES = 20;

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

/** What every ledger call about a purchase says: its user, provider, id, and the caller's key and reason. */
export const about = (
  p: PurchaseRow,
  key: string,
  m: { reason: string; metadata: Record<string, unknown> },
) => ({
  userId: p.user_id,
  source: p.provider,
  purchaseId: p.id,
  idempotencyKey: key,
  reason: m.reason,
  metadata: m.metadata,
});

/**
 * Refunds and their reversals. Accounting on the purchase row (shared with disputes, below):
 * - `credits_reversed`: credits requested back from this purchase and still standing, for refunds and for an
 *   open dispute. What was requested counts, including the part the balance could not cover
 *   (`metadata.uncollected` on the entry): the next refund increment then asks only for its own share, rather
 *   than chasing credits the user has since bought elsewhere.
 * - `credits_disputed`: the part of `credits_reversed` that the open dispute requested.
 */
export function createRefunds(ledger: LedgerService) {
  return {
    /** Refunds up to `targetCredits` in total; an open dispute covers the increment first. */
    async clawBackTo(
      ex: Executor,
      p: PurchaseRow,
      r: { targetCredits: number; full: boolean; entry: EntryFields },
    ): Promise<Applied> {
      const refundedBefore = p.credits_reversed - p.credits_disputed;
      const increment = r.targetCredits - refundedBefore;
      if (increment <= 0) {
        return {
          purchase: p,
          changed: false,
          note: `no new refund: ${refundedBefore} credits already reversed for refunds`,
        };
      }
      // While a dispute is open it already took the rest back: the refund is covered by that first.
      const fromDispute = Math.min(increment, p.credits_disputed);
      const toTake = increment - fromDispute;
      let taken = 0;
      if (toTake > 0) {
        const result = await ledger.clawback({ ...about(p, r.entry.key, r.entry), amount: toTake }, ex);
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
        changed: true,
        note: `refund to ${r.targetCredits} of ${p.credits} credits: requested ${toTake}, took ${taken}`,
      };
    },

    /** Refunds the whole purchase (a store refund): the n-th refund of a purchase gets key `keyBase:n`. */
    async clawBackAll(ex: Executor, p: PurchaseRow, r: SeriesFields): Promise<Applied> {
      const amount = p.credits - p.credits_reversed;
      const taken = await withFreshKey(r.keyBase, (key) =>
        ledger.clawback({ ...about(p, key, r), amount }, ex),
      );
      if (!taken) {
        return { purchase: p, changed: false, note: `more than ${MAX_REFUND_CYCLES} refunds: not applied` };
      }
      // creditsReversed counts what was asked back; what the balance could not cover is the entry's
      // metadata.uncollected, and a reversal of this refund grants back only what the entry took.
      const purchase = await updatePurchase(ex, p.id, {
        status: 'refunded',
        credits_reversed: p.credits_reversed + amount,
      });
      return {
        purchase,
        changed: true,
        note: `refund: took back ${0 - taken.entry.amount} of ${amount} credits`,
      };
    },

    /** Reverses the last refund: grants back what it took; the purchase is completed again. */
    async grantBack(ex: Executor, p: PurchaseRow, r: SeriesFields): Promise<Applied> {
      const refunded = await lastReversalOf(ex, p.user_id, p.id);
      const amount = refunded ? 0 - refunded.amount : 0;
      if (amount > 0) {
        const granted = await withFreshKey(r.keyBase, (key) =>
          ledger.grant({ ...about(p, key, r), amount, expiresAt: expiryFor(p.credit_expiry_days) }, ex),
        );
        if (!granted) {
          return {
            purchase: p,
            changed: false,
            note: `more than ${MAX_REFUND_CYCLES} reversals: not applied`,
          };
        }
      }
      const purchase = await updatePurchase(ex, p.id, { status: 'completed', credits_reversed: 0 });
      return { purchase, changed: true, note: `refund reversed: granted back ${amount} credits` };
    },
  };
}

/** Disputes: one opened takes back the rest of the purchase; one closed settles what it took. */
export function createDisputes(ledger: LedgerService) {
  return {
    /** A dispute takes back the rest of the purchase; the entry's key makes it once per dispute. */
    async disputeOpened(
      ex: Executor,
      p: PurchaseRow,
      d: { disputeId: string; entry: EntryFields },
    ): Promise<Applied> {
      if (p.status === 'disputed') {
        return { purchase: p, changed: false, note: 'a dispute is already open for this purchase' };
      }
      const rest = p.credits - p.credits_reversed;
      let taken = 0;
      if (rest > 0) {
        const result = await ledger.clawback({ ...about(p, d.entry.key, d.entry), amount: rest }, ex);
        taken = result.taken;
      }
      const purchase = await updatePurchase(ex, p.id, {
        status: 'disputed',
        credits_reversed: p.credits_reversed + rest,
        credits_disputed: rest,
      });
      return { purchase, changed: true, note: `dispute ${d.disputeId}: requested ${rest}, took ${taken}` };
    },

    /** A dispute won: grants back exactly what the dispute's clawback took, less what refunds took over since. */
    async disputeWon(
      ex: Executor,
      p: PurchaseRow,
      d: { disputeId: string; openedKey: string; entry: EntryFields },
    ): Promise<Applied> {
      const opened = await findEntryByIdempotencyKey(ex, p.user_id, d.openedKey);
      const giveBack = Math.min(opened ? -opened.amount : 0, p.credits_disputed);
      if (giveBack > 0) {
        await ledger.grant(
          {
            ...about(p, d.entry.key, d.entry),
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
        // Recorded whatever the status was: the trigger sends purchase.dispute_closed with the outcome.
        dispute_outcome: 'won',
        dispute_closed_at: new Date(),
      });
      return { purchase, changed: true, note: `granted back ${giveBack}` };
    },

    /** A dispute lost: the purchase is refunded; what an unseen opening did not take is taken now. */
    async disputeLost(
      ex: Executor,
      p: PurchaseRow,
      d: { disputeId: string; entry: EntryFields },
    ): Promise<Applied> {
      const rest = p.credits - p.credits_reversed;
      let taken = 0;
      if (rest > 0) {
        const result = await ledger.clawback({ ...about(p, d.entry.key, d.entry), amount: rest }, ex);
        taken = result.taken;
      }
      const purchase = await updatePurchase(ex, p.id, {
        status: 'refunded',
        credits_reversed: p.credits_reversed + rest,
        credits_disputed: 0,
        dispute_outcome: 'lost',
        dispute_closed_at: new Date(),
      });
      const more = rest > 0 ? `; requested the ${rest} not taken before, took ${taken}` : '';
      return { purchase, changed: true, note: `purchase refunded, its credits stay clawed back${more}` };
    },
  };
}

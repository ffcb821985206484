import type { PurchaseRow } from '../../db/database.ts';
import type { PurchaseChanges } from './purchases.repository.ts';

/** What a ledger entry about a purchase says besides its amount: its idempotency key, reason and metadata. */
export interface EntryFields {
  /** The entry's idempotency key: what makes the action happen once, whoever asks and however often. */
  key: string;
  reason: string;
  metadata: Record<string, unknown>;
}

/** Entry fields for actions that may repeat on one purchase: the n-th gets key `keyBase:n` (the first `keyBase`). */
export interface SeriesFields {
  keyBase: string;
  reason: string;
  metadata: Record<string, unknown>;
}

/**
 * What a provider's rules decided to do to a purchase, applied by the purchase lifecycle inside the inbox's
 * transaction (the provider's pure rules build these; see stripe-rules.ts and revenuecat-rules.ts).
 */
export type PurchaseAction =
  /** Records provider references (session, PaymentIntent) without a status change. */
  | { type: 'remember'; refs: PurchaseChanges }
  /** Grants a pending (or failed/expired, but paid after all) purchase once; it becomes completed. */
  | { type: 'grant'; entry: EntryFields; refs: PurchaseChanges }
  /** A purchase that will not be paid; only a pending purchase changes. */
  | { type: 'markFailed' | 'markExpired'; refs: PurchaseChanges }
  /** Refunds up to `targetCredits` in total (cumulative, as Stripe reports); `full`: the whole payment. */
  | { type: 'clawBackTo'; targetCredits: number; full: boolean; entry: EntryFields }
  /** Refunds the whole purchase (a store refund). */
  | { type: 'clawBackAll'; entry: SeriesFields }
  /** Reverses the last refund: grants back what it took; the purchase is completed again. */
  | { type: 'grantBack'; entry: SeriesFields }
  /** A dispute takes back the rest of the purchase. */
  | { type: 'disputeOpened'; disputeId: string; entry: EntryFields }
  /** A dispute won: grants back what the dispute's clawback (`openedKey`) took, less later refunds. */
  | { type: 'disputeWon'; disputeId: string; openedKey: string; entry: EntryFields }
  /**
   * A dispute lost: the buyer has the money back, so the purchase is `refunded` and its credits stay clawed
   * back; what the dispute's opening did not take (it was never seen) is taken now with `entry`.
   */
  | { type: 'disputeLost'; disputeId: string; entry: EntryFields };

/** What applying an action did: the purchase after it, whether anything changed, and a note for the inbox. */
export interface Applied {
  purchase: PurchaseRow;
  changed: boolean;
  note: string;
}

import type { Generated, Selectable } from 'kysely';
import type { Provider, PurchaseStatus } from '../../http/schemas.ts';

export type { PurchaseStatus };

export interface PurchasesTable {
  id: string;
  user_id: string;
  package_id: string;
  provider: Provider;
  provider_ref: string | null;
  status: PurchaseStatus;
  credits: number;
  price: number;
  currency: string;
  credit_expiry_days: number | null;
  credits_reversed: Generated<number>;
  credits_disputed: Generated<number>;
  stripe_payment_intent_id: string | null;
  /** How its dispute closed, and when (028_purchase_dispute_outcome.sql); null while none has. */
  dispute_outcome: 'won' | 'lost' | null;
  dispute_closed_at: Date | null;
  created_at: Generated<Date>;
  completed_at: Date | null;
  updated_at: Generated<Date>;
}
export type PurchaseRow = Selectable<PurchasesTable>;

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
  created_at: Generated<Date>;
  completed_at: Date | null;
  updated_at: Generated<Date>;
}
export type PurchaseRow = Selectable<PurchasesTable>;

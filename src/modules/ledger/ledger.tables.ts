import type { ColumnType, Generated, Selectable } from 'kysely';
import type { HoldStatus, LedgerEntryType, LedgerSource } from '../../http/schemas.ts';

export interface AccountsTable {
  user_id: string;
  balance: Generated<number>;
  /** What active holds reserve; available = balance - held (SQL: credits_available). */
  held: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface LedgerEntriesTable {
  user_id: string;
  id: Generated<number>;
  type: LedgerEntryType;
  amount: number;
  balance_after: number;
  source: LedgerSource;
  purchase_id: string | null;
  reason: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  metadata: ColumnType<Record<string, unknown>, string | undefined, never>;
  created_at: Generated<Date>;
  /** The hold a capture's debit came from. */
  hold_id: string | null;
  /** The debit a debit_reversal gives back. */
  reverses_entry_id: number | null;
}

export interface HoldsTable {
  user_id: string;
  id: string;
  seq: Generated<number>;
  amount: number;
  captured_amount: Generated<number>;
  status: HoldStatus;
  reason: string | null;
  metadata: ColumnType<Record<string, unknown>, string | undefined, never>;
  idempotency_key: string | null;
  request_hash: string | null;
  created_at: Generated<Date>;
  expires_at: Date;
  captured_at: Date | null;
  released_at: Date | null;
  entry_id: number | null;
}

export interface CreditLotsTable {
  user_id: string;
  id: Generated<number>;
  purchase_id: string | null;
  source: string;
  amount: number;
  remaining: number;
  /** Reserved by active holds: spendable = remaining - held. */
  held: Generated<number>;
  /** Generated: remaining = 0. */
  empty: Generated<boolean>;
  expires_at: Date | null;
  grant_entry_id: number;
  created_at: Generated<Date>;
}

export type LedgerEntryRow = Selectable<LedgerEntriesTable>;
export type HoldRow = Selectable<HoldsTable>;

import { createHash } from 'node:crypto';
import type { Db, LedgerEntryRow, PreparedQuery } from '../db/database.ts';
import {
  callClawback,
  callDebit,
  callDebitMany,
  callGrant,
  type DebitArgs,
  type EntryJson,
  type Executor,
  expireDueLots,
  findInconsistentAccounts,
  type LedgerResult,
  listAccounts,
  listEntries,
  readBalance,
  readBalanceAt,
  usersWithDueLots,
} from '../db/ledger.repository.ts';
import { AppError } from '../errors.ts';
import type { Balance, LedgerEntry, LedgerSource } from '../schemas.ts';
import { createGroupCommit } from './group-commit.ts';
import { decodeCursor, toPage } from './pagination.ts';

export type { Balance, LedgerEntry };

export interface LedgerOutcome {
  entry: LedgerEntry;
  balance: number;
  /** True when the idempotency key had been used with the same request: nothing new was written. */
  replayed: boolean;
}

const iso = (value: string | Date) => new Date(value).toISOString();

export function toLedgerEntry(e: EntryJson | LedgerEntryRow): LedgerEntry {
  return {
    id: String(e.id),
    userId: e.user_id,
    type: e.type,
    amount: e.amount,
    balanceAfter: e.balance_after,
    source: e.source,
    purchaseId: e.purchase_id,
    reason: e.reason,
    idempotencyKey: e.idempotency_key,
    metadata: e.metadata,
    createdAt: iso(e.created_at),
  };
}

/** JSON with sorted keys, so two bodies that mean the same thing hash the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export const requestHash = (body: unknown) => createHash('sha256').update(canonical(body)).digest('hex');

function outcome(result: LedgerResult, what: string): LedgerOutcome {
  if (!result.entry) throw new Error(`${what} returned no entry (${result.outcome})`);
  if (result.outcome === 'key_reused') {
    throw new AppError(
      'idempotency_key_reused',
      `${what}: the idempotency key was already used for another request`,
    );
  }
  return {
    entry: toLedgerEntry(result.entry),
    balance: result.balance,
    replayed: result.outcome === 'replayed',
  };
}

/** What every credit movement is asked with; each operation adds its own fields. */
export interface LedgerRequest {
  userId: string;
  amount: number;
  idempotencyKey: string;
  reason?: string;
  metadata?: Record<string, unknown>;
}

export type DebitInput = LedgerRequest;

export interface GrantInput extends LedgerRequest {
  source: LedgerSource;
  purchaseId: string | null;
  reason: string;
  expiresAt: Date | null;
}

export type ClawbackInput = Omit<GrantInput, 'expiresAt'>;

/** The most debits sent in one call: a whole batch request (100 items) fits in one. */
const MAX_DEBIT_BATCH = 100;

export interface LedgerServiceOptions {
  /** Every entry written (not replays): metrics. */
  onEntry?: (entry: LedgerEntry) => void;
  /** Every debit call sent, with how many debits it carried: metrics. */
  onDebitCall?: (size: number) => void;
  /** A batch that failed as a whole (its debits are then retried one by one): logs. */
  onDebitBatchError?: (err: unknown, size: number) => void;
  /**
   * How many debit calls run at once (DEBIT_CALLS_IN_FLIGHT). Beyond it, debits wait and leave together
   * when a call returns: one transaction and one commit for all of them (group commit). Most of a lone
   * debit's cost is its commit's WAL flush and its round trip (README, Benchmark).
   */
  debitCallsInFlight: number;
}

/**
 * The one place credits move. Every operation is one SQL function call that locks the account row
 * first (then its lots), expires due lots, and writes the entry; callers may pass their transaction.
 */
export function createLedgerService(db: Db, prepared: PreparedQuery, options: LedgerServiceOptions) {
  const { onEntry = () => {}, onDebitCall = () => {}, onDebitBatchError = () => {} } = options;
  const written = (o: LedgerOutcome) => {
    if (!o.replayed) onEntry(o.entry);
    return o;
  };

  const debits = createGroupCommit<DebitArgs, LedgerResult>({
    maxInFlight: options.debitCallsInFlight,
    maxBatch: MAX_DEBIT_BATCH,
    keyOf: (a) => a.userId,
    sendOne: (a) => callDebit(prepared, a),
    sendMany: (list) => callDebitMany(prepared, list),
    onCall: onDebitCall,
    onBatchError: onDebitBatchError,
  });

  return {
    /** Spends credits; 402 when the spendable balance is short, 409 when the key was used for another body. */
    async debit(input: DebitInput): Promise<LedgerOutcome> {
      const hash = requestHash({ amount: input.amount, reason: input.reason, metadata: input.metadata });
      const result = await debits.run({
        userId: input.userId,
        amount: input.amount,
        key: input.idempotencyKey,
        hash,
        reason: input.reason ?? null,
        metadata: input.metadata,
      });
      if (result.outcome === 'insufficient') {
        throw new AppError(
          'insufficient_credits',
          `Insufficient credits: balance ${result.balance}, requested ${input.amount}`,
        );
      }
      return written(outcome(result, 'Debit'));
    },

    /** Adds credits as a lot; a repeated idempotency key returns the first grant. */
    async grant(input: GrantInput, ex: Executor = db): Promise<LedgerOutcome> {
      const result = await callGrant(ex, {
        userId: input.userId,
        amount: input.amount,
        source: input.source,
        purchaseId: input.purchaseId,
        key: input.idempotencyKey,
        reason: input.reason,
        metadata: input.metadata,
        expiresAt: input.expiresAt,
      });
      return written(outcome(result, 'Grant'));
    },

    /** Takes credits back, the purchase's own lots first, never below zero (the rest is `metadata.uncollected`). */
    async clawback(input: ClawbackInput, ex: Executor = db): Promise<LedgerOutcome & { taken: number }> {
      const result = await callClawback(ex, {
        userId: input.userId,
        amount: input.amount,
        source: input.source,
        purchaseId: input.purchaseId,
        key: input.idempotencyKey,
        reason: input.reason,
        metadata: input.metadata,
      });
      const o = written(outcome(result, 'Clawback'));
      return { ...o, taken: 0 - o.entry.amount }; // 0 - x, not -x: a zero reversal takes 0, not -0
    },

    async balance(userId: string, at?: Date): Promise<Balance> {
      if (at) {
        const row = await readBalanceAt(db, userId, at);
        return {
          userId,
          balance: row?.balance_after ?? 0,
          updatedAt: row ? row.created_at.toISOString() : null,
          expiringSoon: [],
        };
      }
      const row = await readBalance(prepared, userId);
      if (!row) return { userId, balance: 0, updatedAt: null, expiringSoon: [] };
      return {
        userId,
        balance: row.balance,
        updatedAt: row.updated_at ? row.updated_at.toISOString() : null,
        expiringSoon: row.expiring.map((x) => ({ credits: x.credits, expiresAt: iso(x.expiresAt) })),
      };
    },

    async entries(userId: string, limit: number, cursor?: string) {
      const after = decodeCursor(cursor, ['number']) as [number] | undefined;
      const rows = await listEntries(db, userId, limit, after?.[0]);
      return toPage(rows, limit, toLedgerEntry, (r) => [r.id]);
    },

    async accounts(limit: number, cursor?: string) {
      const after = decodeCursor(cursor, ['string']) as [string] | undefined;
      const rows = await listAccounts(db, limit, after?.[0]);
      return toPage(
        rows,
        limit,
        (r) => ({
          userId: r.user_id,
          balance: r.balance,
          createdAt: r.created_at.toISOString(),
          updatedAt: r.updated_at.toISOString(),
        }),
        (r) => [r.user_id],
      );
    },

    /**
     * Writes expiry entries for due lots, a user per transaction. Safe with several replicas: each user's
     * expiry runs under that account's row lock and finds nothing left to do when another replica was first.
     */
    async sweepExpired(batch = 100): Promise<number> {
      let total = 0;
      for (const userId of await usersWithDueLots(db, batch)) {
        total += await db.transaction().execute((trx) => expireDueLots(trx, userId));
      }
      return total;
    },

    verify: () => findInconsistentAccounts(db),
  };
}

export type LedgerService = ReturnType<typeof createLedgerService>;

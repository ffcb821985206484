import { createHash } from 'node:crypto';
import type { Db, LedgerEntryRow, LedgerSource, PreparedQuery } from '../db/database.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
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
import { AppError, badRequest } from '../errors.ts';
import { msg } from '../messages.ts';
import { decodeCursor, toPage } from './pagination.ts';
import { purchasesById } from './packages.service.ts';

/** `?expand=` values of ledger reads. */
export type LedgerExpand = 'purchase';
import { MAX_JSON_DEPTH } from './text.ts';

export interface LedgerEntry {
  id: string;
  userId: string;
  type: 'grant' | 'debit' | 'reversal' | 'expiry';
  amount: number;
  balanceAfter: number;
  source: LedgerSource;
  purchaseId: string | null;
  reason: string | null;
  idempotencyKey: string | null;
  metadata: Record<string, unknown>;
  createdAt: string;
}

export interface Balance {
  userId: string;
  balance: number;
  updatedAt: string | null;
  expiringSoon: { credits: number; expiresAt: string }[];
}

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

/**
 * JSON with sorted keys, so two bodies that mean the same thing hash the same. Bodies are validated
 * (metadata is flat) before they get here; the depth bound keeps the recursion safe whatever a caller passes.
 */
function canonical(value: unknown, depth = 0): string {
  if (depth > MAX_JSON_DEPTH) throw badRequest('request.too_deep', { field: 'body', depth: MAX_JSON_DEPTH });
  if (Array.isArray(value)) return `[${value.map((v) => canonical(v, depth + 1)).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v, depth + 1)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export const requestHash = (body: unknown) => createHash('sha256').update(canonical(body)).digest('hex');

const OPERATIONS = {
  Debit: msg('ledger.operation.debit'),
  Grant: msg('ledger.operation.grant'),
  Clawback: msg('ledger.operation.clawback'),
};

function outcome(result: LedgerResult, what: keyof typeof OPERATIONS): LedgerOutcome {
  if (!result.entry) throw new Error(`${what} returned no entry (${result.outcome})`);
  if (result.outcome === 'key_reused') {
    throw new AppError(
      'idempotency_key_reused',
      msg('ledger.idempotency_key_reused', { operation: OPERATIONS[what] }),
    );
  }
  return {
    entry: toLedgerEntry(result.entry),
    balance: result.balance,
    replayed: result.outcome === 'replayed',
  };
}

export interface GrantInput {
  userId: string;
  amount: number;
  source: LedgerSource;
  purchaseId: string | null;
  idempotencyKey: string;
  reason: string;
  metadata?: Record<string, unknown>;
  expiresAt: Date | null;
}

export type ClawbackInput = Omit<GrantInput, 'expiresAt'>;

/** The most debits sent in one call. */
const MAX_DEBIT_BATCH = 64;

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

interface WaitingDebit {
  args: DebitArgs;
  resolve(r: LedgerResult): void;
  reject(e: unknown): void;
}

/**
 * The one place credits move. Every operation is one SQL function call that locks the account row
 * first (then its lots), expires due lots, and writes the entry; callers may pass their transaction.
 */
export function createLedgerService(db: Db, prepared: PreparedQuery, options: LedgerServiceOptions) {
  const { onEntry = () => {}, onDebitCall = () => {}, onDebitBatchError = () => {} } = options;
  const maxInFlight = options.debitCallsInFlight;
  const written = (o: LedgerOutcome) => {
    if (!o.replayed) onEntry(o.entry);
    return o;
  };

  // Debits wait here while maxInFlight calls are running, or while their user is in one: at low load each
  // goes alone, at once. A user is in at most one call at a time, so a busy account's debits leave together
  // (one lock hand-over, one commit for all of them) and in the order they arrived.
  let waiting: WaitingDebit[] = [];
  const busy = new Set<string>();
  let inFlight = 0;

  async function send(batch: WaitingDebit[]) {
    onDebitCall(batch.length);
    const [only] = batch;
    if (batch.length === 1 && only) {
      await callDebit(prepared, only.args).then(only.resolve, only.reject);
      return;
    }
    let results: LedgerResult[] | undefined;
    try {
      results = await callDebitMany(
        prepared,
        batch.map((b) => b.args),
      );
    } catch (err) {
      // The database is unreachable or frozen: one by one would only wait a query timeout per debit.
      if (isDatabaseUnavailable(err)) {
        for (const b of batch) b.reject(err);
        return;
      }
      // The batch rolled back as a whole; one failing debit must not fail the others: one by one.
      onDebitBatchError(err, batch.length);
      for (const b of batch) await callDebit(prepared, b.args).then(b.resolve, b.reject);
      return;
    }
    batch.forEach((b, i) => {
      const r = results[i];
      if (r) b.resolve(r);
      else b.reject(new Error('credits_debit_many returned too few results'));
    });
  }

  /** The oldest waiting debits whose users are in no call, up to MAX_DEBIT_BATCH; the rest keep waiting. */
  function takeBatch(): WaitingDebit[] {
    const batch: WaitingDebit[] = [];
    const rest: WaitingDebit[] = [];
    for (const w of waiting) {
      if (batch.length < MAX_DEBIT_BATCH && !busy.has(w.args.userId)) batch.push(w);
      else rest.push(w);
    }
    waiting = rest;
    return batch;
  }

  function pump() {
    while (inFlight < maxInFlight && waiting.length > 0) {
      const batch = takeBatch();
      if (batch.length === 0) return;
      const users = new Set(batch.map((b) => b.args.userId));
      for (const user of users) busy.add(user);
      inFlight++;
      void send(batch)
        .catch((err) => {
          for (const b of batch) b.reject(err); // only debits not answered yet: a settled promise ignores it
        })
        .finally(() => {
          for (const user of users) busy.delete(user);
          inFlight--;
          pump();
        });
    }
  }

  function runDebit(args: DebitArgs): Promise<LedgerResult> {
    return new Promise((resolve, reject) => {
      waiting.push({ args, resolve, reject });
      pump();
    });
  }

  return {
    /** Spends credits; 402 when the spendable balance is short, 409 when the key was used for another body. */
    async debit(input: {
      userId: string;
      amount: number;
      idempotencyKey: string;
      reason?: string;
      metadata?: Record<string, unknown>;
    }): Promise<LedgerOutcome> {
      const hash = requestHash({ amount: input.amount, reason: input.reason, metadata: input.metadata });
      const result = await runDebit({
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
          msg('ledger.insufficient_credits', { balance: result.balance, requested: input.amount }),
        );
      }
      return written(outcome(result, 'Debit'));
    },

    /** Adds credits as a lot; a repeated idempotency key returns the first grant. */
    async grant(ex: Executor, input: GrantInput): Promise<LedgerOutcome> {
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
    async clawback(ex: Executor, input: ClawbackInput): Promise<LedgerOutcome & { taken: number }> {
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

    /** Entries newest first; `expand` of `purchase` puts each entry's purchase (or null) beside `purchaseId`. */
    async entries(userId: string, limit: number, cursor?: string, expand: readonly LedgerExpand[] = []) {
      const after = decodeCursor(cursor, ['number']) as [number] | undefined;
      const rows = await listEntries(db, userId, limit, after?.[0]);
      const page = toPage(rows, limit, toLedgerEntry, (r) => [r.id]);
      if (!expand.includes('purchase')) return page;
      const purchases = await purchasesById(
        db,
        page.items.flatMap((e) => (e.purchaseId ? [e.purchaseId] : [])),
      );
      return {
        items: page.items.map((e) => ({
          ...e,
          purchase: (e.purchaseId && purchases.get(e.purchaseId)) || null,
        })),
        nextCursor: page.nextCursor,
      };
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

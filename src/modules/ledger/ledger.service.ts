import { createHash } from 'node:crypto';
import type { Db, Executor, HoldRow, LedgerEntryRow, PreparedQuery } from '../../db/database.ts';
import { fromDatabaseError, isDatabaseUnavailable, isStatementCancelled } from '../../db/errors.ts';
import {
  type ClawbackInput,
  callClawback,
  callGrant,
  type GrantInput,
  type LedgerRequest,
  callLedger,
  callLedgerMany,
  callReverseDebit,
  type EntryJson,
  expireDueHolds,
  expireDueLots,
  findHold,
  findInconsistentAccounts,
  type HoldJson,
  type LedgerOp,
  type LedgerResult,
  listAccounts,
  entryPosition,
  listEntries,
  listHolds,
  readBalance,
  readBalanceAt,
  usersWithDueHolds,
  usersWithDueLots,
} from './ledger.repository.ts';
import { AppError, type ErrorCode, badRequest, conflict, notFound } from '../../errors.ts';
import { msg } from '../../messages.ts';
import type { Balance, Hold, HoldStatus, LedgerEntry, Purchase } from '../../http/schemas.ts';
import { newId } from '../../lib/ids.ts';
import { createGroupCommit } from './group-commit.ts';
import type { LedgerFilter } from './ledger-filters.ts';
import { decodeCursor, toPage } from '../../lib/pagination.ts';
import { MAX_JSON_DEPTH } from '../../lib/text.ts';

/** `?expand=` values of ledger reads. */
export type LedgerExpand = 'purchase';

export type { Balance, Hold, LedgerEntry };

/** The balance after an operation: `balance` right after it (a replay repeats the first one), `held` now. */
export interface BalanceAfter {
  balance: number;
  available: number;
  held: number;
}

export interface LedgerOutcome extends BalanceAfter {
  entry: LedgerEntry;
  /** True when the idempotency key had been used with the same request: nothing new was written. */
  replayed: boolean;
}

export interface HoldOutcome extends BalanceAfter {
  hold: Hold;
  replayed: boolean;
}

export interface CaptureOutcome extends HoldOutcome {
  entry: LedgerEntry;
}

/** One item of a batch of debits: what its single debit would have answered. */
export interface BatchDebitResult {
  index: number;
  status: number;
  code: ErrorCode | null;
  /** The item's error, rendered in the request's language by the route. */
  error: AppError | null;
  entry: LedgerEntry | null;
  balance: number | null;
  available: number | null;
  held: number | null;
}

const balanceAfter = (r: { balance: number; held: number }): BalanceAfter => ({
  balance: r.balance,
  held: r.held,
  available: Math.max(0, r.balance - r.held),
});

/**
 * A ledger list's cursor: [createdAt to the microsecond, id]. A cursor of an id alone (issued before the lists
 * were ordered by time) stands for that entry's position.
 */
async function entryCursor(ex: Executor, cursor: string | undefined) {
  if (cursor === undefined) return undefined;
  try {
    const [time, id] = decodeCursor(cursor, ['timestamp', 'number']) as [string, number];
    return { time, id };
  } catch (err) {
    const [id] = decodeCursor(cursor, ['number']) as [number];
    const position = await entryPosition(ex, id);
    if (!position) throw err;
    return position;
  }
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
    holdId: e.hold_id ?? null,
    reversesEntryId: e.reverses_entry_id == null ? null : String(e.reverses_entry_id),
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
  Hold: msg('ledger.operation.hold'),
  'Debit reversal': msg('ledger.operation.debit_reversal'),
};
type Operation = keyof typeof OPERATIONS;

const keyReused = (what: Operation) =>
  new AppError(
    'idempotency_key_reused',
    msg('ledger.idempotency_key_reused', { operation: OPERATIONS[what] }),
  );

function outcome(result: LedgerResult, what: Operation): LedgerOutcome {
  if (!result.entry) throw new Error(`${what} returned no entry (${result.outcome})`);
  if (result.outcome === 'key_reused') throw keyReused(what);
  return {
    entry: toLedgerEntry(result.entry),
    ...balanceAfter(result),
    replayed: result.outcome === 'replayed',
  };
}

export function toHold(h: HoldJson | HoldRow): Hold {
  return {
    id: h.id,
    userId: h.user_id,
    amount: h.amount,
    capturedAmount: h.captured_amount,
    status: h.status,
    reason: h.reason,
    metadata: h.metadata,
    createdAt: iso(h.created_at),
    expiresAt: iso(h.expires_at),
    capturedAt: h.captured_at ? iso(h.captured_at) : null,
    releasedAt: h.released_at ? iso(h.released_at) : null,
    entryId: h.entry_id == null ? null : String(h.entry_id),
  };
}

/** 402 naming what is available and what active holds keep out of it (the SQL answers available as `balance`). */
const insufficient = (result: LedgerResult, amount: number) =>
  new AppError(
    'insufficient_credits',
    msg('ledger.insufficient_credits', {
      available: result.balance,
      balance: result.balance + result.held,
      held: result.held,
      requested: amount,
    }),
  );

/** A debit's answer as an error, or null when it went through (created or replayed). */
function debitError(result: LedgerResult, amount: number): AppError | null {
  if (result.outcome === 'insufficient') return insufficient(result, amount);
  if (result.outcome === 'key_reused') return keyReused('Debit');
  return null;
}

const debitHash = (input: DebitInput) =>
  requestHash({ amount: input.amount, reason: input.reason, metadata: input.metadata });

const debitArgs = (input: DebitInput): LedgerOp => ({
  op: 'debit',
  userId: input.userId,
  amount: input.amount,
  key: input.idempotencyKey,
  hash: debitHash(input),
  reason: input.reason ?? null,
  metadata: input.metadata,
});

export interface HoldInput extends LedgerRequest {
  /** 60..86400; the hold expires this long after it is made. */
  expiresInSeconds: number;
}

export interface CaptureInput {
  userId: string;
  holdId: string;
  /** Default: the whole hold. */
  amount?: number;
  reason?: string;
  metadata?: Record<string, unknown>;
}

export interface ReversalInput extends Omit<LedgerRequest, 'amount'> {
  /** The debit entry to give back. */
  entryId: string;
  /** Default: all that is left to reverse. */
  amount?: number;
}

/** What every credit movement is asked with; each operation adds its own fields. */
export type { ClawbackInput, GrantInput, LedgerRequest };

export type DebitInput = LedgerRequest;

/** The most operations sent in one call: a whole batch request (100 items) fits in one. */
const MAX_CALL_BATCH = 100;

export interface LedgerServiceOptions {
  /** Every entry written (not replays): metrics. */
  onEntry?: (entry: LedgerEntry) => void;
  /** Every call sent to Postgres by the group commit, with how many operations it carried: metrics. */
  onDebitCall?: (size: number) => void;
  /** A call that failed as a whole (its operations are then retried one by one): logs. */
  onDebitBatchError?: (err: unknown, size: number) => void;
  /**
   * How many calls of debits, holds, captures and releases run at once (DEBIT_CALLS_IN_FLIGHT). Beyond it,
   * they wait and leave together when a call returns: one transaction and one commit for all of them (group
   * commit). Most of a lone operation's cost is its commit's WAL flush and its round trip (docs/benchmarks.md).
   */
  debitCallsInFlight: number;
  /**
   * Purchases by id as API objects, for a ledger read's `?expand=purchase`. Given by the app (the purchases
   * module): the ledger depends on no other module.
   */
  purchasesById?: (ids: readonly string[]) => Promise<ReadonlyMap<string, Purchase>>;
}

type Written = (o: LedgerOutcome) => LedgerOutcome;
type LedgerCalls = ReturnType<typeof createGroupCommit<LedgerOp, LedgerResult>>;

/** One batch item's answer, exactly as its single debit would be answered. */
function toBatchResult(
  s: PromiseSettledResult<LedgerResult>,
  item: DebitInput,
  index: number,
  written: Written,
): BatchDebitResult {
  const failed = (err: unknown): BatchDebitResult => {
    const e =
      err instanceof AppError
        ? err
        : (fromDatabaseError(err) ?? new AppError('internal_error', msg('service.internal_error')));
    return {
      index,
      status: e.statusCode,
      code: e.code,
      error: e,
      entry: null,
      balance: null,
      available: null,
      held: null,
    };
  };
  if (s.status === 'rejected') return failed(s.reason);
  const err = debitError(s.value, item.amount);
  if (err) {
    const r = failed(err);
    if (s.value.outcome === 'insufficient') {
      return {
        ...r,
        available: s.value.balance,
        held: s.value.held,
        balance: s.value.balance + s.value.held,
      };
    }
    return r;
  }
  const o = written(outcome(s.value, 'Debit'));
  return {
    index,
    status: o.replayed ? 200 : 201,
    code: null,
    error: null,
    entry: o.entry,
    balance: o.balance,
    available: o.available,
    held: o.held,
  };
}

/** Debits, holds, captures and releases: they go through the group commit. */
function spendingOperations(calls: LedgerCalls, written: Written, onEntry: (entry: LedgerEntry) => void) {
  return {
    /** Spends credits; 402 when `available` is short, 409 when the key was used for another body. */
    async debit(input: DebitInput): Promise<LedgerOutcome> {
      const result = await calls.run(debitArgs(input));
      const err = debitError(result, input.amount);
      if (err) throw err;
      return written(outcome(result, 'Debit'));
    },

    /**
     * Debits of any users, each answered exactly as its single debit would be; they go through the group
     * commit together, so a batch is one transaction where the accounts allow. Validated by the caller.
     */
    async debitBatch(items: DebitInput[]): Promise<BatchDebitResult[]> {
      const settled = await calls.runAll(items.map(debitArgs));
      // The database could not be reached: the batch fails as a whole (503), as a single debit would.
      const down = settled.find((s) => s.status === 'rejected' && isDatabaseUnavailable(s.reason));
      if (down?.status === 'rejected') throw down.reason;
      return settled.map((s, index) => toBatchResult(s, items[index] as DebitInput, index, written));
    },

    /** Reserves credits for later capture; 402 beyond `available`; replays like a debit. */
    async createHold(input: HoldInput): Promise<HoldOutcome> {
      const result = await calls.run({
        op: 'hold',
        userId: input.userId,
        id: newId('hold'),
        amount: input.amount,
        expiresInSeconds: input.expiresInSeconds,
        key: input.idempotencyKey,
        hash: requestHash({
          amount: input.amount,
          expiresInSeconds: input.expiresInSeconds,
          reason: input.reason,
          metadata: input.metadata,
        }),
        reason: input.reason ?? null,
        metadata: input.metadata,
      });
      if (result.outcome === 'insufficient') throw insufficient(result, input.amount);
      if (result.outcome === 'key_reused') throw keyReused('Hold');
      if (!result.hold) throw new Error(`credits_hold returned no hold (${result.outcome})`);
      return { hold: toHold(result.hold), ...balanceAfter(result), replayed: result.outcome === 'replayed' };
    },

    /** Spends what the work cost (default: the whole hold) and frees the rest. At most once. */
    async captureHold(input: CaptureInput): Promise<CaptureOutcome> {
      const result = await calls.run({
        op: 'capture',
        userId: input.userId,
        holdId: input.holdId,
        amount: input.amount ?? null,
        reason: input.reason ?? null,
        metadata: input.metadata,
      });
      const hold = result.hold ? toHold(result.hold) : null;
      switch (result.outcome) {
        case 'not_found':
          throw notFound('hold.not_found');
        case 'expired':
          throw conflict('hold.expired', { holdId: input.holdId, expiresAt: hold?.expiresAt ?? '' });
        case 'conflict':
          throw hold?.status === 'captured'
            ? conflict('hold.already_captured', { holdId: input.holdId, amount: hold.capturedAmount })
            : conflict('hold.not_active', { holdId: input.holdId, status: hold?.status ?? '' });
        case 'too_much':
          throw badRequest('hold.capture_too_much', { amount: hold?.amount ?? 0 });
      }
      if (!result.entry || !hold)
        throw new Error(`credits_capture returned ${result.outcome} without a result`);
      const entry = toLedgerEntry(result.entry);
      const replayed = result.outcome === 'replayed';
      if (!replayed) onEntry(entry);
      return { hold, entry, ...balanceAfter(result), replayed };
    },

    /** Frees a hold's credits; releasing it again answers it again; a captured or expired hold is 409. */
    async releaseHold(userId: string, holdId: string): Promise<HoldOutcome> {
      const result = await calls.run({ op: 'release', userId, holdId });
      if (result.outcome === 'not_found') throw notFound('hold.not_found');
      const hold = result.hold ? toHold(result.hold) : null;
      if (!hold) throw new Error(`credits_release returned ${result.outcome} without a hold`);
      if (result.outcome === 'conflict') throw conflict('hold.not_active', { holdId, status: hold.status });
      return { hold, ...balanceAfter(result), replayed: result.outcome === 'replayed' };
    },
  };
}

/** Reversals, grants and clawbacks: one SQL function call each, in the caller's transaction if given. */
function creditWrites(db: Db, written: Written) {
  return {
    /** Gives back up to what a debit took, to the lots it took from; never more than the debit in total. */
    async reverseDebit(input: ReversalInput, ex: Executor = db): Promise<LedgerOutcome> {
      if (!/^[1-9]\d{0,14}$/.test(input.entryId)) throw notFound('debit.not_found');
      const result = await callReverseDebit(ex, {
        userId: input.userId,
        entryId: Number(input.entryId),
        amount: input.amount ?? null,
        key: input.idempotencyKey,
        hash: requestHash({
          entryId: input.entryId,
          amount: input.amount,
          reason: input.reason,
          metadata: input.metadata,
        }),
        reason: input.reason ?? null,
        metadata: input.metadata,
      });
      if (result.outcome === 'not_found') throw notFound('debit.not_found');
      if (result.outcome === 'conflict') {
        throw input.amount === undefined
          ? conflict('reversal.nothing_left', { entryId: input.entryId })
          : conflict('reversal.too_much', { entryId: input.entryId, amount: input.amount });
      }
      if (result.outcome === 'key_reused') throw keyReused('Debit reversal');
      return written(outcome(result, 'Debit reversal'));
    },

    /** Adds credits as a lot; a repeated idempotency key returns the first grant. */
    async grant(input: GrantInput, ex: Executor = db): Promise<LedgerOutcome> {
      const result = await callGrant(ex, input);
      return written(outcome(result, 'Grant'));
    },

    /** Takes credits back, the purchase's own lots first, never below zero (the rest is `metadata.uncollected`). */
    async clawback(input: ClawbackInput, ex: Executor = db): Promise<LedgerOutcome & { taken: number }> {
      const result = await callClawback(ex, input);
      const o = written(outcome(result, 'Clawback'));
      return { ...o, taken: 0 - o.entry.amount }; // 0 - x, not -x: a zero reversal takes 0, not -0
    },
  };
}

/** Balances, entries, accounts and holds as the API reads them. */
function ledgerReads(db: Db, prepared: PreparedQuery, purchasesById: LedgerServiceOptions['purchasesById']) {
  return {
    async hold(userId: string, holdId: string): Promise<Hold> {
      const row = await findHold(db, userId, holdId);
      if (!row) throw notFound('hold.not_found');
      return toHold(row);
    },

    async holds(userId: string, limit: number, cursor?: string, status?: HoldStatus) {
      const after = decodeCursor(cursor, ['number']) as [number] | undefined;
      const rows = await listHolds(db, userId, limit, { status, beforeSeq: after?.[0] });
      return toPage(rows, limit, toHold, (r) => [r.seq]);
    },

    async balance(userId: string, at?: Date): Promise<Balance> {
      if (at) {
        const row = await readBalanceAt(db, userId, at);
        // Holds leave no entries: a past balance is the ledger's, with nothing held.
        const balance = row?.balance_after ?? 0;
        return {
          userId,
          balance,
          available: balance,
          held: 0,
          updatedAt: row ? row.created_at.toISOString() : null,
          expiringSoon: [],
        };
      }
      const row = await readBalance(prepared, userId);
      if (!row) return { userId, balance: 0, available: 0, held: 0, updatedAt: null, expiringSoon: [] };
      return {
        userId,
        balance: row.balance,
        available: Math.max(0, row.balance - row.held),
        held: row.held,
        updatedAt: row.updated_at ? row.updated_at.toISOString() : null,
        expiringSoon: row.expiring.map((x) => ({ credits: x.credits, expiresAt: iso(x.expiresAt) })),
      };
    },

    /**
     * Entries a filter selects (a user's, or every account's), newest first; `expand` of `purchase` puts each
     * entry's purchase (or null) beside `purchaseId`.
     */
    async entries(
      filter: LedgerFilter,
      limit: number,
      cursor?: string,
      expand: readonly LedgerExpand[] = [],
    ) {
      const after = await entryCursor(db, cursor);
      const rows = await listEntries(db, filter, limit, after);
      const page = toPage(rows, limit, toLedgerEntry, (r) => [r.cursor_time, r.id]);
      if (!expand.includes('purchase')) return page;
      const ids = page.items.flatMap((e) => (e.purchaseId ? [e.purchaseId] : []));
      const purchases = (await purchasesById?.(ids)) ?? new Map<string, Purchase>();
      return {
        items: page.items.map((e) => ({
          ...e,
          purchase: (e.purchaseId && purchases.get(e.purchaseId)) || null,
        })),
        nextCursor: page.nextCursor,
      };
    },

    async accounts(limit: number, cursor?: string, prefix?: string) {
      const after = decodeCursor(cursor, ['string']) as [string] | undefined;
      const rows = await listAccounts(db, limit, after?.[0], prefix);
      return toPage(
        rows,
        limit,
        (r) => ({
          userId: r.user_id,
          balance: r.balance,
          available: r.balance - r.held,
          held: r.held,
          createdAt: r.created_at.toISOString(),
          updatedAt: r.updated_at.toISOString(),
        }),
        (r) => [r.user_id],
      );
    },
  };
}

/** The expiry sweepers and the ledger check. */
function ledgerMaintenance(db: Db) {
  return {
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

    /**
     * Marks active holds past their expiry `expired` and frees their credits, a user per transaction. Safe
     * with several replicas: each runs under the account's row lock and finds nothing when another was first.
     */
    async sweepExpiredHolds(batch = 100): Promise<number> {
      let total = 0;
      for (const userId of await usersWithDueHolds(db, batch)) {
        total += await db.transaction().execute((trx) => expireDueHolds(trx, userId));
      }
      return total;
    },

    verify: () => findInconsistentAccounts(db),
  };
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

  // Debits, holds, captures and releases share commits: a hold+capture pair costs what two debits cost.
  const calls = createGroupCommit<LedgerOp, LedgerResult>({
    maxInFlight: options.debitCallsInFlight,
    maxBatch: MAX_CALL_BATCH,
    keyOf: (a) => a.userId,
    sendOne: (a) => callLedger(prepared, a),
    sendMany: (list) => callLedgerMany(prepared, list),
    onCall: onDebitCall,
    onBatchError: onDebitBatchError,
    // The database is unreachable or frozen, or the server cancelled the call at its statement_timeout (a lock
    // pile-up): one by one would only wait a timeout per operation.
    failsWhole: (err) => isDatabaseUnavailable(err) || isStatementCancelled(err),
  });

  return {
    /**
     * Debits, holds, captures and releases waiting while every call (DEBIT_CALLS_IN_FLIGHT) is busy: the
     * database is the bottleneck right now. 0 when they wait only for their own account's call.
     */
    spendingBacklog: () => (calls.state.inFlight >= options.debitCallsInFlight ? calls.state.waiting : 0),
    ...spendingOperations(calls, written, onEntry),
    ...creditWrites(db, written),
    ...ledgerReads(db, prepared, options.purchasesById),
    ...ledgerMaintenance(db),
  };
}

export type LedgerService = ReturnType<typeof createLedgerService>;

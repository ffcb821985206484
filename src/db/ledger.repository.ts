import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database, LedgerSource, PreparedQuery } from './database.ts';

/** Any executor: the pool-backed Kysely, or a transaction the caller owns. */
export type Executor = Kysely<Database> | Transaction<Database>;

/** An entry as the SQL functions return it: to_jsonb(ledger_entries). */
export interface EntryJson {
  id: number;
  user_id: string;
  type: 'grant' | 'debit' | 'reversal' | 'expiry';
  amount: number;
  balance_after: number;
  source: LedgerSource;
  purchase_id: string | null;
  reason: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  metadata: Record<string, unknown>;
  created_at: string;
}

export interface LedgerResult {
  outcome: 'created' | 'replayed' | 'key_reused' | 'insufficient';
  balance: number;
  entry: EntryJson | null;
}

const json = (value: Record<string, unknown> | undefined) => JSON.stringify(value ?? {});

export interface DebitArgs {
  userId: string;
  amount: number;
  key: string | null;
  hash: string | null;
  reason: string | null;
  metadata?: Record<string, unknown>;
}

export async function callDebit(q: PreparedQuery, a: DebitArgs): Promise<LedgerResult> {
  const rows = await q<LedgerResult>(
    'credits_debit',
    'select (r).* from (select credits_debit($1, $2, $3, $4, $5, $6::jsonb) as r) s',
    [a.userId, a.amount, a.key, a.hash, a.reason, json(a.metadata)],
  );
  return rows[0] as LedgerResult;
}

/**
 * Debits of any users in one transaction (see credits_debit_many); one result per item, in the order given.
 * A failure rolls back the whole batch.
 */
export async function callDebitMany(q: PreparedQuery, items: DebitArgs[]): Promise<LedgerResult[]> {
  const payload = JSON.stringify(
    items.map((i) => ({
      user: i.userId,
      amount: i.amount,
      key: i.key,
      hash: i.hash,
      reason: i.reason,
      metadata: i.metadata ?? {},
    })),
  );
  const rows = await q<LedgerResult & { n: number }>(
    'credits_debit_many',
    'select n, outcome, balance, entry from credits_debit_many($1::jsonb)',
    [payload],
  );
  const results: LedgerResult[] = [];
  for (const { n, ...result } of rows) results[n - 1] = result;
  return results;
}

export async function callGrant(
  ex: Executor,
  a: {
    userId: string;
    amount: number;
    source: LedgerSource;
    purchaseId: string | null;
    key: string | null;
    reason: string | null;
    metadata?: Record<string, unknown>;
    expiresAt: Date | null;
  },
): Promise<LedgerResult> {
  const { rows } =
    await sql<LedgerResult>`select (r).* from (select credits_grant(${a.userId}, ${a.amount}, ${a.source},
    ${a.purchaseId}, ${a.key}, ${a.reason}, ${json(a.metadata)}::jsonb, ${a.expiresAt}::timestamptz) as r) s`.execute(
      ex,
    );
  return rows[0] as LedgerResult;
}

export async function callClawback(
  ex: Executor,
  a: {
    userId: string;
    amount: number;
    source: LedgerSource;
    purchaseId: string | null;
    key: string | null;
    reason: string | null;
    metadata?: Record<string, unknown>;
  },
): Promise<LedgerResult> {
  const { rows } =
    await sql<LedgerResult>`select (r).* from (select credits_clawback(${a.userId}, ${a.amount},
    ${a.source}, ${a.purchaseId}, ${a.key}, ${a.reason}, ${json(a.metadata)}::jsonb) as r) s`.execute(ex);
  return rows[0] as LedgerResult;
}

/**
 * Locks the account and writes expiry entries for its due lots; returns the credits expired. The SQL
 * function takes the lock: a `for update` here would run the function before the lock, then skip the row.
 */
export async function expireDueLots(ex: Executor, userId: string): Promise<number> {
  const { rows } = await sql<{ expired: number }>`select credits_expire_due(${userId}) as expired`.execute(
    ex,
  );
  return rows[0]?.expired ?? 0;
}

/** Users with lots past their expiry that still hold credits (the sweeper's work list). */
export async function usersWithDueLots(ex: Executor, limit: number): Promise<string[]> {
  const { rows } = await sql<{ user_id: string }>`select distinct user_id from credit_lots
    where not empty and expires_at <= now() limit ${limit}`.execute(ex);
  return rows.map((r) => r.user_id);
}

export interface BalanceRow {
  balance: number;
  updated_at: Date | null;
  expiring: { credits: number; expiresAt: string }[];
}

/**
 * The spendable balance in one round trip: the cached balance less lots already past expiry whose expiry
 * entry is not written yet, and the credits that expire, per expiry time (credits_balance in 003_ledger.sql).
 */
export async function readBalance(q: PreparedQuery, userId: string): Promise<BalanceRow | undefined> {
  const rows = await q<BalanceRow>(
    'credits_balance',
    'select balance, updated_at, expiring from credits_balance($1)',
    [userId],
  );
  return rows[0];
}

/**
 * The balance right after the last entry at or before `at` (0 before the first). Entries are stored to the
 * microsecond but shown to the millisecond, so `at` covers its whole millisecond: asking for an entry's own
 * `createdAt` includes that entry.
 */
export async function readBalanceAt(ex: Executor, userId: string, at: Date) {
  return ex
    .selectFrom('ledger_entries')
    .select(['balance_after', 'created_at'])
    .where('user_id', '=', userId)
    .where('created_at', '<', new Date(at.getTime() + 1))
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function listEntries(ex: Executor, userId: string, limit: number, beforeId?: number) {
  let q = ex
    .selectFrom('ledger_entries')
    .selectAll()
    .where('user_id', '=', userId)
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (beforeId !== undefined) q = q.where('id', '<', beforeId);
  return q.execute();
}

export async function listAccounts(ex: Executor, limit: number, afterUserId?: string) {
  let q = ex
    .selectFrom('accounts')
    .selectAll()
    .orderBy('user_id')
    .limit(limit + 1);
  if (afterUserId !== undefined) q = q.where('user_id', '>', afterUserId);
  return q.execute();
}

export interface VerifyRow {
  user_id: string;
  cached: number;
  entries_sum: number;
  lots_sum: number;
  chain_breaks: number;
}

/**
 * Every account whose cached balance, sum of entries and sum of remaining lots disagree, or whose
 * balanceAfter chain is broken (an entry's balanceAfter is not the previous one plus its amount).
 */
export async function findInconsistentAccounts(ex: Executor): Promise<VerifyRow[]> {
  const { rows } = await sql<VerifyRow>`
    with e as (
      select user_id, sum(amount)::bigint as entries_sum,
             count(*) filter (where balance_after <> running)::bigint as chain_breaks
      from (select user_id, amount, balance_after,
                   sum(amount) over (partition by user_id order by id rows unbounded preceding) as running
            from ledger_entries) x
      group by user_id),
    l as (select user_id, sum(remaining)::bigint as lots_sum from credit_lots group by user_id)
    select a.user_id, a.balance as cached, coalesce(e.entries_sum, 0) as entries_sum,
           coalesce(l.lots_sum, 0) as lots_sum, coalesce(e.chain_breaks, 0) as chain_breaks
    from accounts a
    left join e on e.user_id = a.user_id
    left join l on l.user_id = a.user_id
    where a.balance <> coalesce(e.entries_sum, 0) or a.balance <> coalesce(l.lots_sum, 0)
       or coalesce(e.chain_breaks, 0) > 0
    order by a.user_id`.execute(ex);
  return rows;
}

/** A ledger entry by its idempotency key (a provider's grant or clawback), if written. */
export async function findEntryByIdempotencyKey(ex: Executor, userId: string, key: string) {
  return ex
    .selectFrom('ledger_entries')
    .select(['id', 'type', 'amount', 'metadata'])
    .where('user_id', '=', userId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

/** The newest reversal (clawback) entry of a purchase: what its last refund actually took. */
export async function lastReversalOf(ex: Executor, userId: string, purchaseId: string) {
  return ex
    .selectFrom('ledger_entries')
    .select(['id', 'amount', 'metadata'])
    .where('user_id', '=', userId)
    .where('purchase_id', '=', purchaseId)
    .where('type', '=', 'reversal')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** How many reversal (clawback) entries a purchase has: its refunds so far. */
export async function countReversals(ex: Executor, userId: string, purchaseId: string): Promise<number> {
  const row = await ex
    .selectFrom('ledger_entries')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('user_id', '=', userId)
    .where('purchase_id', '=', purchaseId)
    .where('type', '=', 'reversal')
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

import { type Selectable, sql } from 'kysely';
import type {
  Executor,
  HoldRow,
  HoldStatus,
  LedgerEntryRow,
  LedgerSource,
  PreparedQuery,
} from '../../db/database.ts';
import { exactTime } from '../../lib/keyset.ts';
import { filteredEntries, type LedgerFilter } from './ledger-filters.ts';
import type { AccountsTable } from './ledger.tables.ts';

/** An entry as the SQL functions return it (JSON): the row, its timestamp as text. */
export type EntryJson = Omit<LedgerEntryRow, 'created_at'> & { created_at: string };

/** A hold as the SQL functions return it (JSON): the row less its internals, timestamps as text. */
export type HoldJson = Omit<
  HoldRow,
  'seq' | 'request_hash' | 'idempotency_key' | 'created_at' | 'expires_at' | 'captured_at' | 'released_at'
> & { created_at: string; expires_at: string; captured_at: string | null; released_at: string | null };

/** What every money-moving SQL function answers (the ledger_outcome type in db/schema.sql). */
export interface LedgerResult {
  outcome:
    | 'created'
    | 'replayed'
    | 'key_reused'
    | 'insufficient'
    | 'not_found'
    | 'conflict'
    | 'expired'
    | 'too_much';
  balance: number;
  held: number;
  entry: EntryJson | null;
  hold: HoldJson | null;
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

export interface HoldArgs {
  userId: string;
  id: string;
  amount: number;
  expiresInSeconds: number;
  key: string;
  hash: string;
  reason: string | null;
  metadata?: Record<string, unknown>;
}

export interface CaptureArgs {
  userId: string;
  holdId: string;
  amount: number | null;
  reason: string | null;
  metadata?: Record<string, unknown>;
}

/** One call of the group commit (credits_ledger_many): a debit, a hold, a capture or a release. */
export type LedgerOp =
  | ({ op: 'debit' } & DebitArgs)
  | ({ op: 'hold' } & HoldArgs)
  | ({ op: 'capture' } & CaptureArgs)
  | { op: 'release'; userId: string; holdId: string };

const outcomeColumns = 'outcome, balance, held, entry, hold';

/** One operation alone, as a named statement (planned once per connection). */
export async function callLedger(q: PreparedQuery, a: LedgerOp): Promise<LedgerResult> {
  let rows: LedgerResult[];
  switch (a.op) {
    case 'debit':
      rows = await q<LedgerResult>(
        'credits_debit',
        `select ${outcomeColumns} from credits_debit($1, $2, $3, $4, $5, $6::jsonb)`,
        [a.userId, a.amount, a.key, a.hash, a.reason, json(a.metadata)],
      );
      break;
    case 'hold':
      rows = await q<LedgerResult>(
        'credits_hold',
        `select ${outcomeColumns} from credits_hold($1, $2, $3, make_interval(secs => $4), $5, $6, $7, $8::jsonb)`,
        [a.userId, a.id, a.amount, a.expiresInSeconds, a.key, a.hash, a.reason, json(a.metadata)],
      );
      break;
    case 'capture':
      rows = await q<LedgerResult>(
        'credits_capture',
        `select ${outcomeColumns} from credits_capture($1, $2, $3::bigint, $4, $5::jsonb)`,
        [a.userId, a.holdId, a.amount, a.reason, a.metadata ? JSON.stringify(a.metadata) : null],
      );
      break;
    case 'release':
      rows = await q<LedgerResult>(
        'credits_release',
        `select ${outcomeColumns} from credits_release($1, $2)`,
        [a.userId, a.holdId],
      );
      break;
  }
  return rows[0] as LedgerResult;
}

/** An operation as an item of credits_ledger_many (db/functions/credits_ledger_many.sql). */
function manyItem(a: LedgerOp) {
  switch (a.op) {
    case 'debit':
      return { o: 'd', u: a.userId, a: a.amount, k: a.key, h: a.hash, r: a.reason, m: a.metadata ?? {} };
    case 'hold':
      return {
        o: 'h',
        u: a.userId,
        i: a.id,
        a: a.amount,
        x: a.expiresInSeconds,
        k: a.key,
        h: a.hash,
        r: a.reason,
        m: a.metadata ?? {},
      };
    case 'capture':
      return { o: 'c', u: a.userId, i: a.holdId, a: a.amount, r: a.reason, m: a.metadata ?? null };
    case 'release':
      return { o: 'r', u: a.userId, i: a.holdId };
  }
}

/**
 * Operations of any users in one transaction (see credits_ledger_many); one result per item, in the order
 * given. A failure rolls back the whole call.
 */
export async function callLedgerMany(q: PreparedQuery, items: LedgerOp[]): Promise<LedgerResult[]> {
  const rows = await q<LedgerResult & { n: number }>(
    'credits_ledger_many',
    `select n, ${outcomeColumns} from credits_ledger_many($1::jsonb)`,
    [JSON.stringify(items.map(manyItem))],
  );
  const results: LedgerResult[] = [];
  for (const { n, ...result } of rows) results[n - 1] = result;
  return results;
}

/** What every operation on an account names: whose, how much, its idempotency key, why. */
export interface LedgerRequest {
  userId: string;
  amount: number;
  idempotencyKey: string;
  reason?: string;
  metadata?: Record<string, unknown>;
}

/** A grant: credits from a purchase (or the dev route), as a lot that may expire. */
export interface GrantInput extends LedgerRequest {
  source: LedgerSource;
  purchaseId: string | null;
  reason: string;
  expiresAt: Date | null;
}

/** A clawback: a grant's credits taken back (a refund, a dispute). */
export type ClawbackInput = Omit<GrantInput, 'expiresAt'>;

export async function callGrant(ex: Executor, a: GrantInput): Promise<LedgerResult> {
  const { rows } =
    await sql<LedgerResult>`select (r).* from (select credits_grant(${a.userId}, ${a.amount}, ${a.source},
    ${a.purchaseId}, ${a.idempotencyKey}, ${a.reason}, ${json(a.metadata)}::jsonb, ${a.expiresAt}::timestamptz) as r) s`.execute(
      ex,
    );
  return rows[0] as LedgerResult;
}

export async function callClawback(ex: Executor, a: ClawbackInput): Promise<LedgerResult> {
  const { rows } =
    await sql<LedgerResult>`select (r).* from (select credits_clawback(${a.userId}, ${a.amount},
    ${a.source}, ${a.purchaseId}, ${a.idempotencyKey}, ${a.reason}, ${json(a.metadata)}::jsonb) as r) s`.execute(
      ex,
    );
  return rows[0] as LedgerResult;
}

export async function callReverseDebit(
  ex: Executor,
  a: {
    userId: string;
    entryId: number;
    amount: number | null;
    key: string;
    hash: string;
    reason: string | null;
    metadata?: Record<string, unknown>;
  },
): Promise<LedgerResult> {
  const { rows } = await sql<LedgerResult>`select (r).* from (select credits_reverse_debit(${a.userId},
    ${a.entryId}::bigint, ${a.amount}::bigint, ${a.key}, ${a.hash}, ${a.reason}, ${json(a.metadata)}::jsonb) as r) s`.execute(
    ex,
  );
  return rows[0] as LedgerResult;
}

/** A user's holds, newest first (keyset on the insertion order), optionally of one status. */
export async function listHolds(
  ex: Executor,
  userId: string,
  limit: number,
  opts: { status?: HoldStatus; beforeSeq?: number },
) {
  let q = ex
    .selectFrom('holds')
    .selectAll()
    .where('user_id', '=', userId)
    .orderBy('seq', 'desc')
    .limit(limit + 1);
  if (opts.status) q = q.where('status', '=', opts.status);
  if (opts.beforeSeq !== undefined) q = q.where('seq', '<', opts.beforeSeq);
  return q.execute();
}

export async function findHold(ex: Executor, userId: string, holdId: string) {
  return ex
    .selectFrom('holds')
    .selectAll()
    .where('user_id', '=', userId)
    .where('id', '=', holdId)
    .executeTakeFirst();
}

/** Users with active holds past their expiry (the hold sweeper's work list). */
export async function usersWithDueHolds(ex: Executor, limit: number): Promise<string[]> {
  const { rows } = await sql<{ user_id: string }>`select distinct user_id from holds
    where status = 'active' and expires_at <= now() limit ${limit}`.execute(ex);
  return rows.map((r) => r.user_id);
}

/** Locks the account and marks its holds past expiry `expired`, freeing their credits; returns how many. */
export async function expireDueHolds(ex: Executor, userId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`select credits_expire_holds_of(${userId}) as n`.execute(ex);
  return rows[0]?.n ?? 0;
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
  // Held credits never expire while held: a due lot that holds only them is not work for the sweeper.
  const { rows } = await sql<{ user_id: string }>`select distinct user_id from credit_lots
    where not empty and expires_at <= now() and remaining > held limit ${limit}`.execute(ex);
  return rows.map((r) => r.user_id);
}

export interface BalanceRow {
  balance: number;
  held: number;
  updated_at: Date | null;
  expiring: { credits: number; expiresAt: string }[];
}

/**
 * The spendable balance in one round trip: the cached balance less lots already past expiry whose expiry
 * entry is not written yet, and the credits that expire, per expiry time (db/functions/credits_balance.sql).
 */
export async function readBalance(q: PreparedQuery, userId: string): Promise<BalanceRow | undefined> {
  const rows = await q<BalanceRow>(
    'credits_balance',
    'select balance, held, updated_at, expiring from credits_balance($1)',
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

/** A page of the entries a filter selects, newest first, after a (created_at, id) cursor; limit + 1 rows. */
export async function listEntries(
  ex: Executor,
  filter: LedgerFilter,
  limit: number,
  after?: { time: string; id: number },
) {
  const { rows } = await sql<LedgerEntryRow & { cursor_time: string }>`${filteredEntries(
    filter,
    { order: 'desc', limit: limit + 1, after },
    sql`e.*, ${exactTime('e.created_at')} as cursor_time`,
  )}`.execute(ex);
  return rows;
}

/** The (created_at, id) of one entry: the position an old id-only cursor stands for. */
export async function entryPosition(ex: Executor, id: number) {
  const { rows } = await sql<{ time: string }>`select ${exactTime('created_at')} as time
    from ledger_entries where id = ${id} limit 1`.execute(ex);
  return rows[0] ? { time: rows[0].time, id } : undefined;
}

/**
 * Accounts by user id, after a cursor. With `prefix`, the accounts whose user id begins with it, in byte order
 * (the index accounts_user_id_c serves the prefix as a range).
 */
export async function listAccounts(ex: Executor, limit: number, afterUserId?: string, prefix?: string) {
  if (prefix !== undefined) {
    const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const after = afterUserId === undefined ? sql`` : sql`and (user_id collate "C") > ${afterUserId}`;
    const { rows } = await sql<Selectable<AccountsTable>>`select * from accounts
      where (user_id collate "C") like ${pattern} ${after}
      order by (user_id collate "C") limit ${limit + 1}`.execute(ex);
    return rows;
  }
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
  /** accounts.held, and the sum of the active holds it should equal. */
  held: number;
  holds_sum: number;
  /** Lots whose held amount is not what the active holds reserved from them. */
  lots_held_breaks: number;
  /** Debits whose debit_reversal entries add up to more than the debit. */
  over_reversed: number;
}

/**
 * Every account whose cached balance, sum of entries and sum of remaining lots disagree, whose
 * balanceAfter chain is broken (an entry's balanceAfter is not the previous one plus its amount), whose held
 * amounts (on the account and on each lot) are not what its active holds reserve, or with a debit reversed
 * beyond its amount.
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
    l as (select user_id, sum(remaining)::bigint as lots_sum from credit_lots group by user_id),
    h as (select user_id, sum(amount)::bigint as holds_sum from holds where status = 'active' group by user_id),
    reserved as (
      select hl.user_id, hl.lot_id, sum(hl.amount)::bigint as amount
      from hold_lots hl join holds ho on ho.user_id = hl.user_id and ho.id = hl.hold_id and ho.status = 'active'
      group by hl.user_id, hl.lot_id),
    lh as (
      select c.user_id, count(*)::bigint as n from credit_lots c
      left join reserved r on r.user_id = c.user_id and r.lot_id = c.id
      where c.held <> coalesce(r.amount, 0)
      group by c.user_id),
    rv as (
      select d.user_id, count(*)::bigint as n from ledger_entries d
      join (select user_id, reverses_entry_id, sum(amount) as total from ledger_entries
            where type = 'debit_reversal' group by user_id, reverses_entry_id) x
        on x.user_id = d.user_id and x.reverses_entry_id = d.id
      where d.type <> 'debit' or x.total > -d.amount
      group by d.user_id)
    select a.user_id, a.balance as cached, coalesce(e.entries_sum, 0) as entries_sum,
           coalesce(l.lots_sum, 0) as lots_sum, coalesce(e.chain_breaks, 0) as chain_breaks,
           a.held, coalesce(h.holds_sum, 0) as holds_sum, coalesce(lh.n, 0) as lots_held_breaks,
           coalesce(rv.n, 0) as over_reversed
    from accounts a
    left join e on e.user_id = a.user_id
    left join l on l.user_id = a.user_id
    left join h on h.user_id = a.user_id
    left join lh on lh.user_id = a.user_id
    left join rv on rv.user_id = a.user_id
    where a.balance <> coalesce(e.entries_sum, 0) or a.balance <> coalesce(l.lots_sum, 0)
       or coalesce(e.chain_breaks, 0) > 0 or a.held <> coalesce(h.holds_sum, 0)
       or coalesce(lh.n, 0) > 0 or coalesce(rv.n, 0) > 0
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

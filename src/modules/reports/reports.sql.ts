import { type RawBuilder, sql } from 'kysely';

/**
 * The SQL of the reports (CONTRACT section 15). Times are read and written in UTC; an interval is
 * [at, at + 1 unit), `at` truncated with date_trunc in UTC (weeks start on Monday).
 */

export type Interval = 'hour' | 'day' | 'week' | 'month';

/** An interval's start as an ISO time (always a whole hour, so milliseconds lose nothing). */
const exact = (expr: RawBuilder<unknown>) =>
  sql<string>`to_char((${expr}) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * The intervals from `from` to `to`, whole: rows (at, until), the first the one `from` falls in, the last the
 * one just before `to` falls in.
 */
function bounds(from: string, to: string, interval: Interval) {
  const unit = sql.lit(interval);
  const step = sql.lit(`1 ${interval}`);
  return sql`select g at time zone 'UTC' as at, (g + interval ${step}) at time zone 'UTC' as until
    from generate_series(date_trunc(${unit}, ${from}::timestamptz at time zone 'UTC'),
                         ${to}::timestamptz at time zone 'UTC' - interval '1 microsecond',
                         interval ${step}) g`;
}

/**
 * A user's balance per interval: `balance` the balanceAfter of the last entry before the interval's end
 * (carried forward through empty intervals, 0 before the first entry), `credited` and `debited` the sums of
 * the positive and the negative amounts within it. Each interval is two probes of ledger_entries_user_time_id.
 */
export function balanceHistorySql(userId: string, from: string, to: string, interval: Interval) {
  return sql<{ at: string; balance: number; credited: number; debited: number }>`
    with b as (${bounds(from, to, interval)})
    select ${exact(sql`b.at`)} as at,
      coalesce((select e.balance_after from ledger_entries e
                where e.user_id = ${userId} and e.created_at < b.until
                order by e.created_at desc, e.id desc limit 1), 0) as balance,
      s.credited, s.debited
    from b cross join lateral (
      select coalesce(sum(e.amount) filter (where e.amount > 0), 0) as credited,
             coalesce(-sum(e.amount) filter (where e.amount < 0), 0) as debited
      from ledger_entries e
      where e.user_id = ${userId} and e.created_at >= b.at and e.created_at < b.until) s
    order by b.at`;
}

/**
 * A lot's status now: `active` while it has credits and is not past its expiry; `expired` once past its expiry
 * with credits left or lost to expiry (an expiry entry names it); `spent` when used up without expiring.
 */
export const LOT_STATUS = sql<string>`case
    when l.remaining > 0 and (l.expires_at is null or l.expires_at > now()) then 'active'
    when l.expires_at <= now() and (l.remaining > 0 or exists (
      select 1 from ledger_entries x
      where x.user_id = l.user_id and x.type = 'expiry' and (x.metadata ->> 'lotId')::bigint = l.id)) then 'expired'
    else 'spent' end`;

export function lotsSql(
  userId: string,
  limit: number,
  opts: { status?: 'active' | 'spent' | 'expired'; beforeId?: number },
) {
  const status = opts.status ? sql`and ${LOT_STATUS} = ${opts.status}` : sql``;
  const before = opts.beforeId === undefined ? sql`` : sql`and l.id < ${opts.beforeId}`;
  return sql<{
    id: number;
    grant_entry_id: number;
    purchase_id: string | null;
    source: string;
    amount: number;
    remaining: number;
    held: number;
    expires_at: Date | null;
    status: 'active' | 'spent' | 'expired';
    price: number | null;
    currency: string | null;
    created_at: Date;
  }>`select l.id, l.grant_entry_id, l.purchase_id, l.source, l.amount, l.remaining, l.held, l.expires_at,
      ${LOT_STATUS} as status, l.price, l.currency, l.created_at
    from credit_lots l
    where l.user_id = ${userId} ${status} ${before}
    order by l.id desc limit ${limit + 1}`;
}

/**
 * Every movement of credits out of a lot (qty > 0) or back into it (qty < 0), dated by its entry:
 *   - debits and captures: the entry's lot_id, or its debit_lots rows;
 *   - clawbacks (`reversal`): the same (recorded since migration 017);
 *   - expiries: metadata.lotId;
 *   - debit reversals: the debit's lot, or its debit_lots filled back in credits_reverse_debit's order (latest
 *     expiry first, then the newest lot), each reversal taking up where the debit's earlier ones stopped.
 * Each is costed on its lot: the lot's cost up to a moment is floor(price × taken / amount), and a movement
 * carries the difference it makes, so a lot's movements add up to exactly its price once it is used up.
 */
const COSTED_MOVES = sql`
  lot as (
    select l.user_id, l.id, l.amount, coalesce(l.price, 0) as price, coalesce(l.currency, '') as currency,
           l.created_at, l.grant_entry_id
    from credit_lots l),
  rv as (
    select r.user_id, r.id, r.created_at, r.reverses_entry_id, r.amount,
           coalesce(sum(r.amount) over (partition by r.user_id, r.reverses_entry_id order by r.id
                                        rows between unbounded preceding and 1 preceding), 0) as before
    from ledger_entries r where r.type = 'debit_reversal'),
  dl as (
    select d.user_id, d.entry_id, d.lot_id, d.amount,
           coalesce(sum(d.amount) over (partition by d.user_id, d.entry_id
                                        order by l.expires_at desc nulls first, l.id desc
                                        rows between unbounded preceding and 1 preceding), 0) as start
    from debit_lots d join credit_lots l on l.user_id = d.user_id and l.id = d.lot_id),
  move as (
    select e.user_id, e.lot_id, e.created_at, e.id as entry_id, e.type, -e.amount as qty
    from ledger_entries e where e.type in ('debit', 'reversal') and e.lot_id is not null
    union all
    select e.user_id, d.lot_id, e.created_at, e.id, e.type, d.amount
    from debit_lots d join ledger_entries e on e.user_id = d.user_id and e.id = d.entry_id
    union all
    select e.user_id, (e.metadata ->> 'lotId')::bigint, e.created_at, e.id, e.type, -e.amount
    from ledger_entries e where e.type = 'expiry'
    union all
    select rv.user_id, d.lot_id, rv.created_at, rv.id, 'debit_reversal', -rv.amount
    from rv join ledger_entries d on d.user_id = rv.user_id and d.id = rv.reverses_entry_id
    where d.lot_id is not null
    union all
    select rv.user_id, dl.lot_id, rv.created_at, rv.id, 'debit_reversal',
           -(least(dl.start + dl.amount, rv.before + rv.amount) - greatest(dl.start, rv.before))
    from rv join dl on dl.user_id = rv.user_id and dl.entry_id = rv.reverses_entry_id
    where least(dl.start + dl.amount, rv.before + rv.amount) > greatest(dl.start, rv.before)),
  taken as (
    select m.*, lot.currency, lot.price, lot.amount as lot_amount,
           sum(m.qty) over (partition by m.user_id, m.lot_id order by m.created_at, m.entry_id
                            rows unbounded preceding) as taken_after
    from move m join lot on lot.user_id = m.user_id and lot.id = m.lot_id),
  costed as (
    select t.*, floor(t.price::numeric * t.taken_after / t.lot_amount)
                - floor(t.price::numeric * (t.taken_after - t.qty) / t.lot_amount) as cost
    from taken t),
  opened as (
    select lot.*, g.type = 'grant' as granted
    from lot left join ledger_entries g on g.user_id = lot.user_id and g.id = lot.grant_entry_id)`;

export interface ReportRow {
  at: string;
  currency: string | null;
  granted: number;
  debited: number;
  debit_reversed: number;
  clawed_back: number;
  expired: number;
  outstanding: number;
  sold: number;
  recognized: number;
  breakage: number;
  money_clawed_back: number;
  deferred: number;
}

/**
 * The credits report: per interval and currency (the lot's purchase's; '' inside, null out, for lots with no
 * purchase price), what moved within the interval and what is outstanding at its end, in credits and at cost.
 * Outstanding and deferred are an opening figure (everything before the first interval) carried forward by
 * each interval's movements, so `previous deferred + sold - recognized - breakage - clawedBack = deferred`
 * holds by construction; ledger:verify checks the same figures against the lots' `remaining`. Every currency
 * of a lot created before `to` has a row in every interval (empty intervals included).
 */
export function creditsReportSql(from: string, to: string, interval: Interval, order: 'asc' = 'asc') {
  const unit = sql.lit(interval);
  const bucket = (col: RawBuilder<unknown>) =>
    sql`date_trunc(${unit}, ${col} at time zone 'UTC') at time zone 'UTC'`;
  return sql<ReportRow>`
    with ${COSTED_MOVES},
    b as (${bounds(from, to, interval)}),
    first_at as (select min(at) as at, max(until) as until from b),
    currencies as (select distinct currency from lot where created_at < (select until from first_at)),
    opening_moves as (
      select m.currency, sum(m.qty) as qty, sum(m.cost) as cost from costed m
      where m.created_at < (select at from first_at) group by m.currency),
    opening_lots as (
      select o.currency, sum(o.amount) as amount, sum(o.price) filter (where o.granted) as sold from opened o
      where o.created_at < (select at from first_at) group by o.currency),
    opening as (
      select c.currency,
             coalesce(ol.amount, 0) - coalesce(om.qty, 0) as outstanding,
             coalesce(ol.sold, 0) - coalesce(om.cost, 0) as deferred
      from currencies c
      left join opening_lots ol on ol.currency = c.currency
      left join opening_moves om on om.currency = c.currency),
    opens as (
      select ${bucket(sql`o.created_at`)} as at, o.currency,
             coalesce(sum(o.amount) filter (where o.granted), 0) as granted,
             coalesce(sum(o.amount) filter (where not o.granted or o.granted is null), 0) as reopened,
             coalesce(sum(o.price) filter (where o.granted), 0) as sold
      from opened o
      where o.created_at >= (select at from first_at) and o.created_at < (select until from first_at)
      group by 1, 2),
    moved as (
      select ${bucket(sql`m.created_at`)} as at, m.currency,
             coalesce(sum(m.qty) filter (where m.type = 'debit'), 0) as debited,
             coalesce(-sum(m.qty) filter (where m.type = 'debit_reversal'), 0) as debit_reversed,
             coalesce(sum(m.qty) filter (where m.type = 'reversal'), 0) as clawed_back,
             coalesce(sum(m.qty) filter (where m.type = 'expiry'), 0) as expired,
             coalesce(sum(m.cost) filter (where m.type in ('debit', 'debit_reversal')), 0) as recognized,
             coalesce(sum(m.cost) filter (where m.type = 'expiry'), 0) as breakage,
             coalesce(sum(m.cost) filter (where m.type = 'reversal'), 0) as money_clawed_back
      from costed m
      where m.created_at >= (select at from first_at) and m.created_at < (select until from first_at)
      group by 1, 2),
    grid as (
      select b.at, c.currency,
             coalesce(o.granted, 0) as granted, coalesce(o.reopened, 0) as reopened, coalesce(o.sold, 0) as sold,
             coalesce(m.debited, 0) as debited, coalesce(m.debit_reversed, 0) as debit_reversed,
             coalesce(m.clawed_back, 0) as clawed_back, coalesce(m.expired, 0) as expired,
             coalesce(m.recognized, 0) as recognized, coalesce(m.breakage, 0) as breakage,
             coalesce(m.money_clawed_back, 0) as money_clawed_back
      from b cross join currencies c
      left join opens o on o.at = b.at and o.currency = c.currency
      left join moved m on m.at = b.at and m.currency = c.currency)
    select ${exact(sql`g.at`)} as at, nullif(g.currency, '') as currency,
      g.granted, g.debited, g.debit_reversed + g.reopened as debit_reversed, g.clawed_back, g.expired,
      op.outstanding + sum(g.granted + g.reopened - g.debited + g.debit_reversed - g.clawed_back - g.expired)
        over w as outstanding,
      g.sold, g.recognized, g.breakage, g.money_clawed_back,
      op.deferred + sum(g.sold - g.recognized - g.breakage - g.money_clawed_back) over w as deferred
    from grid g join opening op on op.currency = g.currency
    window w as (partition by g.currency order by g.at rows unbounded preceding)
    order by g.at ${sql.raw(order)}, g.currency`;
}

/**
 * Per currency, what the movements say (sold - recognized - breakage - clawedBack, and the credits left) beside
 * what the lots say (the deferred cost of their `remaining`, and its sum). ledger:verify reports a currency
 * where they differ.
 */
export const costCheckSql = sql<{
  currency: string | null;
  by_movements: number;
  by_lots: number;
  credits_by_movements: number;
  credits_by_lots: number;
}>`
  with ${COSTED_MOVES},
  m as (select currency, sum(cost) as cost, sum(qty) as qty from costed group by currency),
  o as (select currency, sum(price) filter (where granted) as sold, sum(amount) as amount from opened group by currency),
  l as (
    select coalesce(currency, '') as currency, sum(remaining) as remaining,
           sum(coalesce(price, 0) - floor(coalesce(price, 0)::numeric * (amount - remaining) / amount)) as deferred
    from credit_lots group by 1)
  select nullif(o.currency, '') as currency,
    coalesce(o.sold, 0) - coalesce(m.cost, 0) as by_movements, coalesce(l.deferred, 0) as by_lots,
    o.amount - coalesce(m.qty, 0) as credits_by_movements, coalesce(l.remaining, 0) as credits_by_lots
  from o left join m on m.currency = o.currency left join l on l.currency = o.currency
  order by 1 nulls first`;

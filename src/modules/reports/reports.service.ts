import type { FastifyReply } from 'fastify';
import { sql } from 'kysely';
import type { DatabaseHandle, Db } from '../../db/database.ts';
import { fromDatabaseError } from '../../db/errors.ts';
import { badRequest } from '../../errors.ts';
import { LEDGER_CSV_COLUMNS } from '../../http/csv.ts';
import { decodeCursor, toPage } from '../../lib/pagination.ts';
// The ledger module has no index.ts on this branch yet: its files are imported directly.
import { checkRange, filteredEntries, type LedgerFilter } from '../ledger/index.ts';
import { csvText, sendCsv } from './csv-export.ts';
import {
  balanceHistorySql,
  costCheckSql,
  creditsReportSql,
  type Interval,
  lotsSql,
  type ReportRow,
} from './reports.sql.ts';

/** At most this many intervals per balance history or report (CONTRACT section 15). */
export const MAX_INTERVALS = 1_000;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The start of the interval `ms` falls in (UTC; weeks start on Monday). */
function truncate(ms: number, interval: Interval): number {
  const d = new Date(ms);
  switch (interval) {
    case 'hour':
      return Math.floor(ms / HOUR) * HOUR;
    case 'day':
      return Math.floor(ms / DAY) * DAY;
    case 'week': {
      const day = Math.floor(ms / DAY) * DAY;
      return day - ((new Date(day).getUTCDay() + 6) % 7) * DAY;
    }
    case 'month':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
}

/** How many intervals cover [from, to): the one `from` falls in up to the one just before `to`. */
export function intervalCount(fromMs: number, toMs: number, interval: Interval): number {
  const start = truncate(fromMs, interval);
  if (interval === 'month') {
    const a = new Date(start);
    const b = new Date(toMs - 1);
    return (b.getUTCFullYear() - a.getUTCFullYear()) * 12 + b.getUTCMonth() - a.getUTCMonth() + 1;
  }
  const len = interval === 'hour' ? HOUR : interval === 'day' ? DAY : 7 * DAY;
  return Math.ceil((toMs - start) / len);
}

/** A range of a report's query: defaults, checks (400 naming the field), and the interval count bound. */
function range(query: { from?: string; to?: string; interval?: Interval }, defaultInterval: Interval) {
  const interval = query.interval ?? defaultInterval;
  const to = query.to ?? new Date().toISOString();
  const from = query.from ?? new Date(Date.parse(to) - 30 * DAY).toISOString();
  checkRange(from, to);
  const count = intervalCount(Date.parse(from), Date.parse(to), interval);
  if (count > MAX_INTERVALS)
    throw badRequest('query.too_many_intervals', { from, to, interval, count, max: MAX_INTERVALS });
  return { from, to, interval };
}

const CSV_REPORT_COLUMNS = [
  'at',
  'currency',
  'credits.granted',
  'credits.debited',
  'credits.debitReversed',
  'credits.clawedBack',
  'credits.expired',
  'credits.outstanding',
  'money.sold',
  'money.recognized',
  'money.breakage',
  'money.clawedBack',
  'money.deferred',
] as const;

const reportItem = (r: ReportRow) => ({
  at: r.at,
  currency: r.currency,
  credits: {
    granted: r.granted,
    debited: r.debited,
    debitReversed: r.debit_reversed,
    clawedBack: r.clawed_back,
    expired: r.expired,
    outstanding: r.outstanding,
  },
  money: {
    sold: r.sold,
    recognized: r.recognized,
    breakage: r.breakage,
    clawedBack: r.money_clawed_back,
    deferred: r.deferred,
  },
});

/** How long a report's query may run (it reads every movement ever made; on the replica when there is one). */
const REPORT_TIMEOUT_MS = 600_000;

/**
 * Reports and exports (CONTRACT section 15). `read` is the database they read: DATABASE_READ_URL's (a
 * streaming replica) when set, else a pool of their own on the primary, without the API's query timeout.
 * Lots are read from the primary (`db`): they are part of the account's live state.
 */
export function createReportsService(db: Db, read: DatabaseHandle) {
  /** One statement on the read pool, without the API's query timeout, in a read-only transaction. */
  async function readQuery<R>(query: { sql: string; parameters: readonly unknown[] }): Promise<R[]> {
    try {
      const client = await read.pool.connect();
      try {
        await client.query('begin transaction read only');
        await client.query(`set local statement_timeout = ${REPORT_TIMEOUT_MS}`);
        // The planner's row estimates for these CTEs are far above the real counts, which buys seconds of JIT
        // compilation for a query that runs in milliseconds.
        await client.query('set local jit = off');
        // It sorts every movement ever made (per lot, then per interval): in memory, not on disk.
        await client.query("set local work_mem = '64MB'");
        const { rows } = await client.query({
          text: query.sql,
          values: query.parameters as unknown[],
          query_timeout: REPORT_TIMEOUT_MS + 10_000,
        } as never);
        await client.query('commit');
        client.release();
        return rows as R[];
      } catch (err) {
        client.release(err as Error);
        throw err;
      }
    } catch (err) {
      throw fromDatabaseError(err) ?? err;
    }
  }

  const compile = <R>(q: ReturnType<typeof sql<R>>) => q.compile(read.db);

  return {
    async balanceHistory(
      userId: string,
      query: { from?: string; to?: string; interval?: Interval },
    ): Promise<{
      userId: string;
      interval: Interval;
      items: { at: string; balance: number; credited: number; debited: number }[];
    }> {
      const { from, to, interval } = range(query, 'day');
      const rows = await readQuery<{ at: string; balance: number; credited: number; debited: number }>(
        compile(balanceHistorySql(userId, from, to, interval)),
      );
      return { userId, interval, items: rows };
    },

    async lots(userId: string, limit: number, cursor?: string, status?: 'active' | 'spent' | 'expired') {
      const after = decodeCursor(cursor, ['number']) as [number] | undefined;
      const { rows } = await lotsSql(userId, limit, { status, beforeId: after?.[0] }).execute(db);
      return toPage(
        rows,
        limit,
        (l) => ({
          id: String(l.id),
          entryId: String(l.grant_entry_id),
          purchaseId: l.purchase_id,
          source: l.source,
          amount: l.amount,
          remaining: l.remaining,
          held: l.held,
          expiresAt: l.expires_at ? l.expires_at.toISOString() : null,
          status: l.status,
          price: l.price,
          currency: l.currency,
          createdAt: l.created_at.toISOString(),
        }),
        (l) => [l.id],
      );
    },

    async creditsReport(query: { from?: string; to?: string; interval?: 'day' | 'week' | 'month' }) {
      const { from, to, interval } = range(query, 'day');
      const rows = await readQuery<ReportRow>(compile(creditsReportSql(from, to, interval)));
      return { interval, items: rows.map(reportItem) };
    },

    async creditsReportCsv(
      reply: FastifyReply,
      query: { from?: string; to?: string; interval?: 'day' | 'week' | 'month' },
    ) {
      const { from, to, interval } = range(query, 'day');
      const q = creditsReportSql(from, to, interval);
      const fields = [
        'at',
        'currency',
        'granted',
        'debited',
        'debit_reversed',
        'clawed_back',
        'expired',
        'outstanding',
        'sold',
        'recognized',
        'breakage',
        'money_clawed_back',
        'deferred',
      ];
      const cells = sql`select ${sql.join(
        fields.map((f, i) => {
          const value = f === 'currency' ? csvText(sql.ref(`r.${f}`)) : sql.ref(`r.${f}`);
          return sql`${value} as ${sql.id(CSV_REPORT_COLUMNS[i] as string)}`;
        }),
      )} from (${q}) r`;
      return sendCsv(reply, read.pool, compile(cells), `credits-report-${interval}`);
    },

    /** Every entry a ledger filter selects, as CSV, oldest first. */
    async ledgerCsv(reply: FastifyReply, filter: LedgerFilter, name: string) {
      const t = (column: string) => csvText(sql.ref(column));
      const columns = sql`e.id, to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as c2,
        ${t('e.user_id')} as c3, e.type, e.amount, e.balance_after, e.source, ${t('e.purchase_id')} as c8,
        ${t('e.hold_id')} as c9, e.reverses_entry_id, ${t('e.reason')} as c11, ${t('e.idempotency_key')} as c12,
        e.metadata, e.created_at`;
      const picked = [
        'id',
        'c2',
        'c3',
        'type',
        'amount',
        'balance_after',
        'source',
        'c8',
        'c9',
        'reverses_entry_id',
        'c11',
        'c12',
        'metadata',
      ];
      const outer = sql.join(
        picked.map((c, i) => sql`${sql.ref(`x.${c}`)} as ${sql.id(LEDGER_CSV_COLUMNS[i] as string)}`),
      );
      return sendCsv(
        reply,
        read.pool,
        compile(sql`${filteredEntries(filter, { order: 'asc' }, columns, outer)}`),
        name,
      );
    },

    /** Per currency, the cost figures by movements and by lots (ledger:verify). */
    async costCheck() {
      const { rows } = await costCheckSql.execute(db);
      return rows;
    },
  };
}

export type ReportsService = ReturnType<typeof createReportsService>;

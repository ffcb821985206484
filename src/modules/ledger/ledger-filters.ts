import { type Static, Type } from '@sinclair/typebox';
import { type RawBuilder, sql } from 'kysely';
import { badRequest } from '../../errors.ts';
import { LedgerExpandQuery, type LedgerEntryType, PageQuery } from '../../http/schemas.ts';

/** Every entry type, in the order the filters list them. */
export const ENTRY_TYPES: readonly LedgerEntryType[] = [
  'grant',
  'debit',
  'reversal',
  'expiry',
  'debit_reversal',
];

const TYPE_ALT = ENTRY_TYPES.join('|');

/** `?type=&from=&to=` of the ledger lists (CONTRACT section 15). */
export const LedgerFilterFields = {
  type: Type.Optional(
    Type.String({
      pattern: `^(${TYPE_ALT})(,(${TYPE_ALT}))*$`,
      maxLength: 200,
      description: `Entry types, comma-separated (${ENTRY_TYPES.join(', ')}); all when absent`,
      examples: ['debit,debit_reversal'],
    }),
  ),
  from: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'ISO time with offset; entries created at or after it (inclusive, to the microsecond)',
      examples: ['2026-05-01T00:00:00Z'],
    }),
  ),
  to: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'ISO time with offset; entries created before it (exclusive); must be later than `from`',
      examples: ['2026-06-01T00:00:00Z'],
    }),
  ),
};

export const LedgerListQuery = Type.Composite(
  [PageQuery, LedgerExpandQuery, Type.Object(LedgerFilterFields)],
  { additionalProperties: false },
);
export type LedgerListQuery = Static<typeof LedgerListQuery>;

/** The all-accounts ledger: the same, and `?userId=`. */
export const AllLedgerQuery = Type.Composite(
  [
    LedgerListQuery,
    Type.Object({
      userId: Type.Optional(
        Type.String({ minLength: 1, maxLength: 255, description: "Only this user's entries" }),
      ),
    }),
  ],
  { additionalProperties: false },
);
export type AllLedgerQuery = Static<typeof AllLedgerQuery>;

export interface LedgerFilter {
  userId?: string;
  types: readonly LedgerEntryType[];
  /** Exact ISO texts as given (Postgres reads them to the microsecond; a JS Date would drop three digits). */
  from?: string;
  to?: string;
}

const YEAR_1 = Date.parse('0001-01-01T00:00:00Z');
const YEAR_10000 = Date.parse('+010000-01-01T00:00:00Z');

/**
 * An ISO time in microseconds since the epoch, or undefined when Postgres could not store it (year 0, past
 * 9999). The schema's `date-time` format has already checked the text.
 */
export function isoMicros(text: string): bigint | undefined {
  const ms = Date.parse(text);
  if (Number.isNaN(ms) || ms < YEAR_1 || ms >= YEAR_10000) return undefined;
  const fraction = /\.(\d+)/.exec(text)?.[1] ?? '';
  const micros = Number((fraction.slice(3, 6) || '0').padEnd(3, '0'));
  return BigInt(ms) * 1000n + BigInt(micros);
}

/** Checks a time range of the query: each a storable time, `from` earlier than `to`. 400 naming the field. */
export function checkRange(from: string | undefined, to: string | undefined) {
  const f = from === undefined ? undefined : isoMicros(from);
  if (from !== undefined && f === undefined) throw badRequest('query.time_invalid', { field: 'from' });
  const t = to === undefined ? undefined : isoMicros(to);
  if (to !== undefined && t === undefined) throw badRequest('query.time_invalid', { field: 'to' });
  if (f !== undefined && t !== undefined && f >= t) throw badRequest('query.time_range');
}

/** The filter of a ledger list's query string (validated by the schema; the range checked here). */
export function ledgerFilter(
  query: { type?: string; from?: string; to?: string },
  userId?: string,
): LedgerFilter {
  checkRange(query.from, query.to);
  const types = query.type
    ? ENTRY_TYPES.filter((t) => (query.type as string).split(',').includes(t))
    : ENTRY_TYPES;
  return { userId, types, from: query.from, to: query.to };
}

/**
 * The entries a filter selects, in (created_at, id) order, newest first (`desc`) or oldest first (`asc`):
 * one account's entries of every type are one ordered index range (ledger_entries_user_time_id); otherwise
 * one range per type (ledger_entries_user_type_time, or ledger_entries_type_time across accounts), merged.
 * With `limit`, each range stops after `limit` rows, so a page costs the same whatever the filter. `after`
 * is the keyset cursor: the (created_at, id) of the last row already read.
 */
export function filteredEntries(
  filter: LedgerFilter,
  opts: { order: 'asc' | 'desc'; limit?: number; after?: { time: string; id: number } },
  columns: RawBuilder<unknown> = sql`e.*`,
  /** What the merged rows answer (they carry `columns`, which must include created_at and id). */
  outer: RawBuilder<unknown> = sql`*`,
): RawBuilder<unknown> {
  const dir = opts.order === 'desc' ? sql.raw('desc') : sql.raw('asc');
  const cmp = opts.order === 'desc' ? sql.raw('<') : sql.raw('>');
  const branch = (type?: LedgerEntryType) => {
    const where: RawBuilder<unknown>[] = type === undefined ? [] : [sql`e.type = ${type}`];
    if (filter.userId !== undefined) where.push(sql`e.user_id = ${filter.userId}`);
    if (filter.from !== undefined) where.push(sql`e.created_at >= ${filter.from}::timestamptz`);
    if (filter.to !== undefined) where.push(sql`e.created_at < ${filter.to}::timestamptz`);
    if (opts.after)
      where.push(
        sql`(e.created_at, e.id) ${cmp} (${opts.after.time}::timestamptz, ${opts.after.id}::bigint)`,
      );
    const limit = opts.limit === undefined ? sql`` : sql`limit ${opts.limit}`;
    return sql`(select ${columns} from ledger_entries e where ${sql.join(where, sql` and `)}
      order by e.created_at ${dir}, e.id ${dir} ${limit})`;
  };
  const oneRange = filter.userId !== undefined && ENTRY_TYPES.every((t) => filter.types.includes(t));
  const branches = oneRange ? [branch()] : filter.types.map(branch);
  const limit = opts.limit === undefined ? sql`` : sql`limit ${opts.limit}`;
  return sql`select ${outer} from (${sql.join(branches, sql` union all `)}) x
    order by x.created_at ${dir}, x.id ${dir} ${limit}`;
}

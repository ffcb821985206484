import { type RawBuilder, sql } from 'kysely';

/**
 * A timestamptz as exact text, to the microsecond, for keyset cursors: a JS Date keeps milliseconds only,
 * and a cursor that drops the last three digits skips the rows sharing the millisecond of a page's last row.
 */
export function exactTime(column: string): RawBuilder<string> {
  return sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/** Rows after a cursor in `order by <time> desc, <id> desc`: (time, id) < (the cursor's). */
export function olderThan(timeColumn: string, idColumn: string, after: { time: string; id: string }) {
  return sql<boolean>`(${sql.ref(timeColumn)}, ${sql.ref(idColumn)}) < (${after.time}::timestamptz, ${after.id})`;
}

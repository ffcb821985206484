import { badRequest } from '../errors.ts';
import { isWellFormedText } from './text.ts';

/**
 * Keyset cursors, the one kind every list uses: the last item's sort key, base64url-encoded JSON, opaque to
 * clients. A time in a key is always the exact text of a timestamptz (`timestamp`, from `exactTime` in
 * db/keyset.ts), never a JS Date: a millisecond cursor skips the rows sharing a page's last millisecond.
 */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** A timestamptz as Postgres holds it, to the microsecond: a JS Date would drop the last three digits. */
// Six digits; three are accepted from cursors issued before every list used microseconds.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(\d{3})?Z$/;

const YEAR_1 = Date.parse('0001-01-01T00:00:00Z');
const YEAR_10000 = Date.parse('+010000-01-01T00:00:00Z');

/** Years 1..9999: Postgres has no year 0000 (it would answer a 500), and cursors never hold later years. */
const inPostgresRange = (ms: number) => !Number.isNaN(ms) && ms >= YEAR_1 && ms < YEAR_10000;

/**
 * `timestamp`: an exact timestamptz string (selected with `to_char(... 'US')`), compared in SQL as
 * `::timestamptz`.  */
export function decodeCursor(
  cursor: string | undefined,
  shape: readonly ('string' | 'number' | 'timestamp')[],
) {
  if (cursor === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badRequest('cursor.invalid');
  }
  if (!Array.isArray(parsed) || parsed.length !== shape.length) throw badRequest('cursor.invalid');
  return parsed.map((value, i) => {
    const kind = shape[i];
    if (kind === 'number' && typeof value === 'number' && Number.isSafeInteger(value)) return value;
    // A cursor is client input like any other: text Postgres cannot store is refused here, not by a query.
    if (typeof value === 'string' && !isWellFormedText(value)) throw badRequest('cursor.invalid');
    if (kind === 'string' && typeof value === 'string') return value;
    if (
      kind === 'timestamp' &&
      typeof value === 'string' &&
      TIMESTAMP.test(value) &&
      inPostgresRange(Date.parse(value)) &&
      // Rejects what Postgres would refuse (e.g. February 30), which Date.parse rolls over silently.
      !Number.isNaN(Date.parse(value)) &&
      new Date(value).toISOString().slice(0, 23) === value.slice(0, 23)
    )
      return value;
    throw badRequest('cursor.invalid');
  });
}

/** Rows fetched with limit + 1: the page, and the cursor of its last item when more follow. */
export function toPage<R, T>(
  rows: R[],
  limit: number,
  map: (row: R) => T,
  keyOf: (row: R) => (string | number)[],
) {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  const last = pageRows[pageRows.length - 1];
  return { items: pageRows.map(map), nextCursor: more && last ? encodeCursor(keyOf(last)) : null };
}

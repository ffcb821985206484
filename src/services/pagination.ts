import { badRequest } from '../errors.ts';

/** Keyset cursors: the last item's sort key, base64url-encoded JSON. Opaque to clients. */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** A timestamptz as Postgres holds it, to the microsecond: a JS Date would drop the last three digits. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/**
 * `timestamp`: an exact timestamptz string (selected with `to_char(... 'US')`), compared in SQL as
 * `::timestamptz`. Use it rather than `date` for keyset columns: with a millisecond cursor, the rows that
 * share the millisecond of a page's last row would be skipped.
 */
export function decodeCursor(
  cursor: string | undefined,
  shape: readonly ('string' | 'number' | 'date' | 'timestamp')[],
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
    if (kind === 'string' && typeof value === 'string') return value;
    if (kind === 'date' && typeof value === 'string' && !Number.isNaN(Date.parse(value)))
      return new Date(value);
    if (
      kind === 'timestamp' &&
      typeof value === 'string' &&
      TIMESTAMP.test(value) &&
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

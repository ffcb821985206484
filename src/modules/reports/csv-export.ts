import { stringify } from 'csv-stringify';
import type { FastifyReply } from 'fastify';
import { type RawBuilder, sql } from 'kysely';
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import { AppError } from '../../errors.ts';
import { fromDatabaseError } from '../../db/errors.ts';
import { msg } from '../../messages.ts';

/** Rows fetched from the cursor per round trip: bounds the memory an export holds, whatever its size. */
const BATCH_ROWS = 1_000;

/**
 * A text cell as an export writes it: one that a spreadsheet would run as a formula (beginning with =, +, -,
 * @, a tab or a carriage return) gets a leading '. Done in SQL, on text columns only: numbers (a debit's -3)
 * are never prefixed, and every cell reaches Node as text, with nothing to parse.
 */
export const csvText = (expr: RawBuilder<unknown>) =>
  sql<string>`case when left(${expr}, 1) in ('=', '+', '-', '@', E'\t', E'\r') then '''' || ${expr} else ${expr} end`;

/** Every column as Postgres' own text: no value is parsed into JS and printed again. */
const asText = { getTypeParser: () => (value: string) => value };

export interface CsvQuery {
  sql: string;
  parameters: readonly unknown[];
}

/**
 * Streams every row of one query as CSV (CONTRACT section 15) in constant memory: a server-side cursor
 * (pg-query-stream) read BATCH_ROWS at a time as arrays of text (the query selects the columns in CSV order,
 * its text cells through csvText), through csv-stringify (RFC 4180 quoting, CRLF records), to the response,
 * with back-pressure all the way. One statement in one read-only
 * transaction: one snapshot, so rows written meanwhile are neither half-included nor repeated. The
 * statement timeout is lifted for it (an export of millions of rows runs as long as it takes).
 *
 * The connection is taken before the answer starts, so an unreachable database is a 503 in the envelope;
 * a failure mid-stream can only cut the response short (the client sees an incomplete body).
 */
export async function sendCsv(
  reply: FastifyReply,
  pool: pg.Pool,
  query: CsvQuery,
  header: readonly string[],
  filename: string,
) {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw fromDatabaseError(err) ?? new AppError('service_unavailable', msg('service.database_unavailable'));
  }
  let released = false;
  const release = (err?: Error) => {
    if (released) return;
    released = true;
    client.release(err);
  };
  try {
    await client.query('begin transaction read only');
    await client.query('set local statement_timeout = 0');
    // JIT compiles for estimated rows; a streamed cursor gains nothing from it.
    await client.query('set local jit = off');
  } catch (err) {
    release(err as Error);
    throw fromDatabaseError(err) ?? err;
  }
  const stream = new QueryStream(query.sql, query.parameters as unknown[], {
    batchSize: BATCH_ROWS,
    highWaterMark: BATCH_ROWS,
    rowMode: 'array',
    types: asText,
  });
  // pg's client-side query timeout (the API pool's) would cut a long export: it streams as long as it takes.
  Object.assign(stream, { query_timeout: 2_147_483_647 });
  const rows = client.query(stream);
  const csv = stringify({
    header: true,
    columns: [...header],
    record_delimiter: '\r\n',
  });
  const fail = (err: Error) => {
    rows.destroy();
    csv.destroy(err);
    // The transaction is abandoned with its connection: destroyed, never lent again mid-cursor.
    release(err);
  };
  rows.on('error', fail);
  csv.on('error', () => release(new Error('csv stream failed')));
  rows.on('end', () => {
    client.query('commit').then(
      () => release(),
      (err: Error) => release(err),
    );
  });
  // A client that goes away stops the query (the cursor is closed with its connection).
  reply.raw.once('close', () => {
    if (!rows.readableEnded) fail(new Error('client closed the export'));
  });
  rows.pipe(csv);
  reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename.replace(/[^\w.-]/g, '_')}.csv"`)
    .header('cache-control', 'no-store');
  return reply.send(csv);
}

import type { FastifyReply } from 'fastify';
import { type RawBuilder, sql } from 'kysely';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { fromDatabaseError } from '../../db/errors.ts';
import { AppError } from '../../errors.ts';
import { msg } from '../../messages.ts';

export interface CsvQuery {
  sql: string;
  parameters: readonly unknown[];
}

/**
 * A text cell as an export writes it: one that a spreadsheet would run as a formula (beginning with =, +, -,
 * @, a tab or a carriage return) gets a leading '. Done in SQL, on text columns only: numbers (a debit's -3)
 * are never prefixed.
 */
export const csvText = (expr: RawBuilder<unknown>) =>
  sql<string>`case when left(${expr}, 1) in ('=', '+', '-', '@', E'\\t', E'\\r') then '''' || ${expr} else ${expr} end`;

/**
 * A compiled query with its parameters written in as literals: COPY takes no bind parameters. Strings are
 * quoted by pg's escapeLiteral; numbers must be finite. Every value here was validated by the route first.
 */
function inline(client: pg.PoolClient, query: CsvQuery): string {
  return query.sql.replace(/\$(\d+)/g, (_, n: string) => {
    const value = query.parameters[Number(n) - 1];
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    if (typeof value === 'string') return client.escapeLiteral(value);
    throw new Error(`export parameter $${n} is neither a string nor a number`);
  });
}

/**
 * Streams every row of one query as CSV (CONTRACT section 15) in constant memory: Postgres writes the CSV
 * itself (`COPY (query) TO STDOUT WITH (FORMAT csv, HEADER)`: RFC 4180 quoting of commas, quotes and line
 * breaks, quotes doubled; the header is the query's column names; records end with a line feed), and the
 * service passes its bytes on untouched (pg-copy-streams), with back-pressure to the client: no row becomes a
 * JS object, and nothing is copied. (Turning record ends into CRLF cost a copy of every chunk: about 25 MB
 * more RSS over a large export, bench/export.ts; every CSV reader takes LF.)
 * The query selects its columns in CSV order, named as the header, its text cells through csvText.
 *
 * One statement in one read-only transaction: one snapshot, so an entry written meanwhile is neither half in
 * the file nor repeated. The statement timeout is lifted for it (a large export runs as long as it streams).
 * The connection is taken before the answer starts, so an unreachable database is a 503 in the envelope; a
 * failure mid-stream can only cut the file short.
 */
export async function sendCsv(reply: FastifyReply, pool: pg.Pool, query: CsvQuery, filename: string) {
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
    // JIT compiles for the planner's estimates; a streamed export gains nothing from it.
    await client.query('set local jit = off');
    // The credits report sorts every movement ever made: in memory, not on disk.
    await client.query("set local work_mem = '64MB'");
  } catch (err) {
    release(err as Error);
    throw fromDatabaseError(err) ?? err;
  }
  const copy = client.query(
    copyTo(`copy (${inline(client, query)}) to stdout with (format csv, header true)`),
  );
  const fail = (err: Error) => {
    copy.destroy(err);
    // The transaction is abandoned with its connection: destroyed, never lent again mid-COPY.
    release(err);
  };
  copy.on('error', fail);
  copy.on('end', () => {
    client.query('commit').then(
      () => release(),
      (err: Error) => release(err),
    );
  });
  // A client that goes away stops the export (the COPY dies with its connection).
  reply.raw.once('close', () => {
    if (!copy.readableEnded) fail(new Error('client closed the export'));
  });
  reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename.replace(/[^\w.-]/g, '_')}.csv"`)
    .header('cache-control', 'no-store');
  return reply.send(copy);
}

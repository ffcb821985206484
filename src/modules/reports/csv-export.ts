import { Transform } from 'node:stream';
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
 * Postgres ends CSV records with LF; RFC 4180 says CRLF. A line feed outside quotes is a record's end (one
 * inside a quoted cell is data and stays as it is): each becomes CRLF. The quote state carries across chunks.
 */
function crlfRecords() {
  let quoted = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const startQuoted = quoted;
      let ends = 0;
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i];
        if (b === 0x22) quoted = !quoted;
        else if (b === 0x0a && !quoted) ends++;
      }
      if (ends === 0) return done(null, chunk);
      const out = Buffer.allocUnsafe(chunk.length + ends);
      let q = startQuoted;
      let j = 0;
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i] as number;
        if (b === 0x22) q = !q;
        else if (b === 0x0a && !q) out[j++] = 0x0d;
        out[j++] = b;
      }
      done(null, out);
    },
  });
}

/**
 * Streams every row of one query as CSV (CONTRACT section 15) in constant memory: Postgres writes the CSV
 * itself (`COPY (query) TO STDOUT WITH (FORMAT csv, HEADER)`: RFC 4180 quoting of commas, quotes and line
 * breaks, quotes doubled; the header is the query's column names), and the service passes its bytes on
 * (pg-copy-streams), records ended with CRLF, with back-pressure to the client: no row becomes a JS object.
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
  } catch (err) {
    release(err as Error);
    throw fromDatabaseError(err) ?? err;
  }
  const copy = client.query(
    copyTo(`copy (${inline(client, query)}) to stdout with (format csv, header true)`),
  );
  const csv = crlfRecords();
  const fail = (err: Error) => {
    copy.destroy();
    csv.destroy(err);
    // The transaction is abandoned with its connection: destroyed, never lent again mid-COPY.
    release(err);
  };
  copy.on('error', fail);
  csv.on('error', () => release(new Error('csv stream failed')));
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
  copy.pipe(csv);
  reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename.replace(/[^\w.-]/g, '_')}.csv"`)
    .header('cache-control', 'no-store');
  return reply.send(csv);
}

import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromDatabaseError, isDatabaseUnavailable } from '../../src/db/errors.ts';
import { buildTestApp, grant, type TestApp } from '../helpers/app.ts';
import { expectError } from '../helpers/envelope.ts';

/** The error a real Postgres raises for `text`, on the test database. */
async function pgError(t: TestApp, text: string): Promise<unknown> {
  try {
    await t.pg.query(text);
  } catch (err) {
    return err;
  }
  throw new Error(`no error from: ${text}`);
}

describe('Postgres errors are translated once, at the database boundary', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await buildTestApp({}, undefined, {
      beforeReady: (app) => {
        // What a bug that tried to rewrite history would meet: the append-only trigger.
        app.post('/api/v1/test/rewrite-ledger', async () => {
          await sql`update ledger_entries set amount = amount where user_id = 'errors_user'`.execute(app.db);
          return { never: true };
        });
        app.post('/api/v1/test/nul', async () => {
          await sql`select ${'a\u0000b'}::text`.execute(app.db);
          return { never: true };
        });
      },
    });
    await grant(t.app, 'errors_user', 5);
  });

  it.each([
    ['23505 unique violation', "insert into accounts (user_id) values ('errors_user')", 'conflict', 409],
    [
      '23503 foreign key',
      "insert into ledger_entries (user_id, type, amount, balance_after, source) values ('nobody', 'grant', 1, 1, 'api')",
      'conflict',
      409,
    ],
    [
      '23514 check violation',
      "update accounts set balance = -1 where user_id = 'errors_user'",
      'conflict',
      409,
    ],
    [
      '42501 append-only trigger',
      "delete from ledger_entries where user_id = 'errors_user'",
      'conflict',
      409,
    ],
    ['22P02 bad value', "select 'x'::int", 'validation_failed', 400],
    ['22P05 NUL in jsonb', `select '"a\\u0000b"'::jsonb::text`, 'validation_failed', 400],
    [
      '57014 statement timeout',
      'set local statement_timeout = 10; select pg_sleep(1)',
      'service_unavailable',
      503,
    ],
  ])('%s -> %s', async (_name, text, code, status) => {
    const err = await pgError(t, text);
    const mapped = fromDatabaseError(err);
    expect(mapped?.code).toBe(code);
    expect(mapped?.statusCode).toBe(status);
  });

  it('names the package when a purchase meets a deleted one, and a product id clash', async () => {
    const purchase = await pgError(
      t,
      "insert into purchases (id, user_id, package_id, provider, status, credits, price, currency) values ('p1', 'u', 'pkg_gone', 'dev', 'completed', 1, 1, 'usd')",
    );
    expect(fromDatabaseError(purchase)).toMatchObject({
      code: 'not_found',
      message: 'Credit package not found',
    });
  });

  it('a client-side query timeout or a dead connection means unavailable; a bug means nothing', () => {
    expect(isDatabaseUnavailable(new Error('Query read timeout'))).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(fromDatabaseError(new Error('Query read timeout'))?.code).toBe('service_unavailable');
    expect(fromDatabaseError(new TypeError('x is undefined'))).toBeUndefined();
    expect(fromDatabaseError(Object.assign(new Error('syntax'), { code: '42601' }))).toBeUndefined();
    // A missing grant is not the ledger's rule: the operator must see it as the fault it is.
    const denied = Object.assign(new Error('permission denied for table accounts'), { code: '42501' });
    expect(fromDatabaseError(denied)).toBeUndefined();
  });

  it('the append-only trigger answers 409 in the envelope, not 500', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/test/rewrite-ledger' });
    expectError(res, 409, 'conflict');
    expect(res.body).not.toMatch(/ledger_entries is append-only|42501/);
  });

  it('text Postgres cannot store is a 400, not a 500', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/test/nul' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'validation_failed' });
  });
});

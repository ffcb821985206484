import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { asAdmin, buildTestApp, cleanup, grant } from '../helpers/app.ts';
import { entryRows } from '../modules/ledger/ledger-helpers.ts';
import { expectError } from '../helpers/envelope.ts';

/** A server that answers, slowly: an account row locked by another session for longer than the timeouts. */
describe('a statement the server cannot finish in time', () => {
  it('is cancelled by the server before the client gives up: 503, nothing applied, then or later', async () => {
    const t = await buildTestApp({ DATABASE_QUERY_TIMEOUT_MS: '2000' });
    await grant(t.app, 'locked_user', 10);
    const locker = new pg.Client({ connectionString: t.databaseUrl });
    await locker.connect();
    cleanup(() => locker.end());
    await locker.query('begin');
    await locker.query(`select 1 from accounts where user_id = 'locked_user' for update`);

    const debit = () =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/accounts/locked_user/debits',
        headers: { ...asAdmin(), 'idempotency-key': 'behind-a-lock' },
        payload: { amount: 3 },
      });
    const res = await debit();
    expectError(res, 503, 'service_unavailable');

    // The lock goes away. A debit abandoned only by the client would now go through on the server; a
    // cancelled one was rolled back.
    await locker.query('commit');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await entryRows(t.pg, 'locked_user')).map((e) => e.type)).toEqual(['grant']);

    // So the retry with the same key is the first debit, not a replay.
    const retry = await debit();
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(retry.json().data).toMatchObject({ balance: 7 });
  });
});

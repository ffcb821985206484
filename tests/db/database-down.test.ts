import { sql } from 'kysely';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  asAdmin,
  asUser,
  buildTestApp,
  createApiKey,
  createTestDatabase,
  grant,
  type TestApp,
} from '../helpers/app.ts';
import { DatabaseProxy, targetOf, throughProxy } from '../helpers/db-proxy.ts';
import { expectError } from '../helpers/envelope.ts';

function expectUnavailable(res: LightMyRequestResponse) {
  expectError(res, 503, 'service_unavailable');
  // No internals: no connection details, no driver messages.
  expect(res.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|terminated|stack/i);
}

describe('while the database is down', () => {
  let t: TestApp;
  let proxy: DatabaseProxy;
  let key: string;

  beforeAll(async () => {
    const realUrl = await createTestDatabase();
    proxy = new DatabaseProxy(targetOf(realUrl));
    await proxy.start();
    t = await buildTestApp({}, throughProxy(realUrl, proxy), {
      beforeReady: (app) => {
        // A request that is surely in flight when the connection is cut.
        app.get('/api/v1/test/slow-query', async (_request, reply) => {
          await sql`select pg_sleep(0.5)`.execute(app.db);
          return reply.ok({ slept: true });
        });
      },
    });
    // The helper's own pool goes through the proxy too; its idle clients die with each cut.
    t.pg.on('error', () => {});
    await grant(t.app, 'down_user', 7);
    key = await createApiKey(t.app, ['balances:read']);
  });

  const reads = () => [
    t.app.inject({ method: 'GET', url: '/readyz' }),
    t.app.inject({ method: 'GET', url: '/api/v1/credits/balance', headers: asUser('down_user') }),
    t.app.inject({ method: 'GET', url: '/api/v1/accounts/down_user/balance', headers: { 'x-api-key': key } }),
  ];
  const debit = (idempotencyKey: string) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/down_user/debits',
      headers: { ...asAdmin(), 'idempotency-key': idempotencyKey },
      payload: { amount: 2 },
    });
  const requests = () => [...reads(), debit('down-1')];

  it('answers 503 service_unavailable (not 500), then recovers without a restart', async () => {
    const up = await Promise.all(reads());
    for (const res of up) expect(res.statusCode).toBe(200);

    await proxy.cut();
    // Several rounds: the first meets pooled connections that just died, later ones meet refused connects.
    for (let round = 0; round < 3; round++) {
      for (const res of await Promise.all(requests())) expectUnavailable(res);
    }
    // The process is alive and says so.
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

    await proxy.restore();
    const [ready, own, viaKey] = await Promise.all(reads());
    expect(ready?.statusCode).toBe(200);
    expect(own?.statusCode).toBe(200);
    expect(own?.json().data.balance).toBe(7);
    expect(viaKey?.statusCode).toBe(200);
    const spent = await debit('down-1');
    expect(spent.statusCode).toBe(201);
    expect(spent.json().data.balance).toBe(5);

    // The refused debits wrote nothing: one debit in the ledger.
    const { rows } = await t.pg.query(
      "select count(*)::int as n from ledger_entries where user_id = 'down_user' and type = 'debit'",
    );
    expect(rows[0].n).toBe(1);
  });

  it('answers 503 when the connection drops in the middle of a query, and the process survives', async () => {
    // In production an uncaught exception stops the service: a dropped connection must not raise one.
    const uncaught: unknown[] = [];
    const record = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', record);
    onTestFinished(() => {
      process.off('uncaughtException', record);
    });
    const slow = t.app.inject({ method: 'GET', url: '/api/v1/test/slow-query' });
    const others = [...reads(), debit('down-2')];
    await new Promise((r) => setTimeout(r, 150));
    await proxy.cut();
    expectUnavailable(await slow);
    // Cut while these were in flight or done: never a 500.
    for (const res of await Promise.all(others)) expect([200, 201, 503]).toContain(res.statusCode);

    await proxy.restore();
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const again = await t.app.inject({ method: 'GET', url: '/api/v1/test/slow-query' });
    expect(again.statusCode).toBe(200);
    expect(uncaught).toEqual([]);
  });
});

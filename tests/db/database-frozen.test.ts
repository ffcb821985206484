import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const QUERY_TIMEOUT_MS = 1_500;

function expectUnavailable(res: LightMyRequestResponse) {
  expectError(res, 503, 'service_unavailable');
  expect(res.body).not.toMatch(/timeout|127\.0\.0\.1|stack/i);
}

/** A server that stops answering without closing its connections (SIGSTOP, a partition that drops packets). */
describe('while the database is frozen', () => {
  let t: TestApp;
  let proxy: DatabaseProxy;
  let key: string;

  beforeAll(async () => {
    const realUrl = await createTestDatabase();
    proxy = new DatabaseProxy(targetOf(realUrl));
    await proxy.start();
    t = await buildTestApp(
      { DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS) },
      throughProxy(realUrl, proxy),
    );
    t.pg.on('error', () => {});
    await grant(t.app, 'frozen_user', 10);
    key = await createApiKey(t.app, ['balances:read', 'credits:debit']);
  });
  afterAll(() => proxy.thaw());

  const readyz = () => t.app.inject({ method: 'GET', url: '/readyz' });
  const balance = () =>
    t.app.inject({ method: 'GET', url: '/api/v1/credits/balance', headers: asUser('frozen_user') });
  const keyBalance = () =>
    t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/frozen_user/balance',
      headers: { 'x-api-key': key },
    });
  const debit = (idempotencyKey: string, amount = 3) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/frozen_user/debits',
      headers: { ...asAdmin(), 'idempotency-key': idempotencyKey },
      payload: { amount },
    });

  it('answers 503 within a few seconds, recovers by itself after the thaw, and a debit of unknown outcome replays', async () => {
    // Warm pool: the frozen requests meet connections that are open and silent, not refused ones.
    for (const res of await Promise.all([readyz(), balance(), keyBalance(), debit('warm', 1)])) {
      expect(res.statusCode).toBeLessThan(300);
    }

    proxy.freeze();
    const started = Date.now();
    const answers = await Promise.all([readyz(), balance(), keyBalance(), debit('frozen-debit')]);
    const elapsed = Date.now() - started;
    for (const res of answers) expectUnavailable(res);
    // Two timeouts at most (a connect, then a query), far from the freeze's length.
    expect(elapsed).toBeLessThan(QUERY_TIMEOUT_MS * 2 + 3_000);

    // Still frozen: later requests (new connections now) are refused in bounded time too.
    const second = Date.now();
    for (const res of await Promise.all([readyz(), debit('frozen-debit')])) expectUnavailable(res);
    expect(Date.now() - second).toBeLessThan(QUERY_TIMEOUT_MS * 2 + 3_000);
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

    proxy.thaw();
    // Recovers without a restart: the pool drops the connections it gave up on and opens new ones.
    let ready: LightMyRequestResponse | undefined;
    for (let i = 0; i < 50; i++) {
      ready = await readyz();
      if (ready.statusCode === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready?.statusCode).toBe(200);

    // The frozen debit reached Postgres after the thaw and committed: its retry replays it, never debits twice.
    const retry = await debit('frozen-debit');
    expect(retry.statusCode).toBeLessThan(300);
    const { rows } = await t.pg.query(
      "select count(*)::int as n from ledger_entries where user_id = 'frozen_user' and idempotency_key = 'frozen-debit'",
    );
    expect(rows[0].n).toBe(1);
    const now = await balance();
    expect(now.statusCode).toBe(200);
    expect(now.json().data.balance).toBe(10 - 1 - 3);
    expect(retry.json().data.balance).toBe(6);
  });
});

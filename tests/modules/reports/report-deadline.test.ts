import { describe, expect, it } from 'vitest';
import { asAdmin, buildTestApp, grant } from '../../helpers/app.ts';

// Reports read every movement ever made, on the read pool, under a statement timeout of their own: they are
// not held to the API's request deadline (DATABASE_QUERY_TIMEOUT_MS + 500 ms), which would answer 503 and
// count a slow report as a database outage.
describe('reports outlast the request deadline', () => {
  it('a credits report and a balance history slower than the deadline answer 200; a debit still has one', async () => {
    const t = await buildTestApp({ DATABASE_QUERY_TIMEOUT_MS: '200' });
    await grant(t.app, 'slow_report', 10);
    // A report that cannot start for 1.5 s: another transaction holds the ledger exclusively.
    const locker = await t.pg.connect();
    await locker.query('begin');
    await locker.query('lock table ledger_entries in access exclusive mode');
    const release = new Promise<void>((resolve) =>
      setTimeout(async () => {
        await locker.query('rollback');
        locker.release();
        resolve();
      }, 1_500),
    );
    const from = new Date(Date.now() - 86_400_000).toISOString();
    const to = new Date(Date.now() + 86_400_000).toISOString();
    const started = Date.now();
    const [report, history, blockedDebit] = await Promise.all([
      t.app.inject({
        method: 'GET',
        url: `/api/v1/reports/credits?from=${from}&to=${to}&interval=day`,
        headers: asAdmin(),
      }),
      t.app.inject({
        method: 'GET',
        url: `/api/v1/accounts/slow_report/balance-history?from=${from}&to=${to}&interval=day`,
        headers: asAdmin(),
      }),
      t.app.inject({
        method: 'POST',
        url: '/api/v1/accounts/slow_report/debits',
        headers: { ...asAdmin(), 'idempotency-key': 'slow-report-debit' },
        payload: { amount: 1 },
      }),
      release,
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    expect(report.statusCode).toBe(200);
    expect(report.json().data.items.length).toBeGreaterThan(0);
    expect(history.statusCode).toBe(200);
    expect(history.json().data.items.at(-1).balance).toBe(10);
    // The API's own routes keep their deadline: the debit waited on the same lock and gave up with a 503.
    expect(blockedDebit.statusCode).toBe(503);
    expect(blockedDebit.json().code).toBe('service_unavailable');
  });
});

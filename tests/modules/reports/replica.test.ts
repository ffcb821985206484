import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../../src/db/migrator.ts';
import type { App } from '../../../src/http/types.ts';
import { asAdmin, buildTestApp, createApiKey, grant } from '../../helpers/app.ts';
import { type ReplicaPair, replicaUnavailable, startReplicaPair } from '../../helpers/replica.ts';
import { debit } from '../ledger/ledger-helpers.ts';

/**
 * DATABASE_READ_URL against a real streaming standby (pg_basebackup -R from a throwaway primary, same
 * binaries). Skipped, saying why, where none can be started; REQUIRE_REPLICA=1 (CI on the system Postgres)
 * makes that a failure instead.
 */
const why = replicaUnavailable();
if (why && process.env.REQUIRE_REPLICA === '1') throw new Error(`REQUIRE_REPLICA=1 but no standby: ${why}`);
if (why) console.warn(`replica tests skipped: ${why}`);

describe.skipIf(why !== undefined)('reports and exports on a streaming replica (DATABASE_READ_URL)', () => {
  let pair: ReplicaPair;
  let app: App;
  let key: string;

  beforeAll(async () => {
    pair = await startReplicaPair(15);
    await migrate(pair.primaryUrl);
    const t = await buildTestApp({ DATABASE_READ_URL: pair.standbyUrl }, pair.primaryUrl);
    app = t.app;
    key = await createApiKey(app, ['credits:debit']);
  }, 120_000);
  afterAll(async () => {
    await pair?.stop();
  });

  const get = (url: string, accept = 'application/json') =>
    app.inject({ method: 'GET', url, headers: { ...asAdmin(), accept } });

  it('balance history, the credits report and CSV exports read the standby; everything else the primary', async () => {
    await grant(app, 'rep_u', 10);
    expect((await debit(app, key, 'rep_u', { amount: 3 })).statusCode).toBe(201);
    await pair.caughtUp();
    const history = async () =>
      (await get('/api/v1/accounts/rep_u/balance-history')).json().data.items.at(-1);
    expect(await history()).toMatchObject({ balance: 7, credited: 10, debited: 3 });
    const csvRows = async () =>
      (await get('/api/v1/accounts/rep_u/ledger', 'text/csv')).body.trim().split('\n');
    expect(await csvRows()).toHaveLength(3);

    // With the standby's replay paused, a new debit is on the primary only: the JSON ledger (primary) shows
    // it, balance history, the report and the export (standby) do not yet.
    await pair.pauseReplay(true);
    try {
      expect((await debit(app, key, 'rep_u', { amount: 2 })).statusCode).toBe(201);
      const ledger = (await get('/api/v1/accounts/rep_u/ledger')).json().data.items;
      expect(ledger).toHaveLength(3);
      expect(await history()).toMatchObject({ balance: 7, debited: 3 });
      expect(await csvRows()).toHaveLength(3);
      const report = (await get('/api/v1/reports/credits')).json().data.items;
      expect(report.at(-1).credits).toMatchObject({ debited: 3, outstanding: 7 });
    } finally {
      await pair.pauseReplay(false);
    }
    await pair.caughtUp();
    expect(await history()).toMatchObject({ balance: 5, debited: 5 });
    expect(await csvRows()).toHaveLength(4);
  });
});

import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.ts';
import { buildTestApp } from '../../helpers/app.ts';

describe('purchase events', () => {
  it('each status change of a purchase is one event of the matching type, with the status it came from', async () => {
    const t = await buildTestApp();
    await t.pg.query(
      `insert into credit_packages (id, name, credits, price, currency) values ('pkg_ev', 'Pack', 100, 500, 'usd')`,
    );
    const insert = (id: string, status: string) =>
      t.pg.query(
        `insert into purchases (id, user_id, package_id, provider, status, credits, price, currency)
         values ($1, 'pe_user', 'pkg_ev', 'stripe', $2, 100, 500, 'usd')`,
        [id, status],
      );
    const set = (id: string, changes: string) =>
      t.pg.query(`update purchases set ${changes} where id = $1`, [id]);

    await insert('pur_a', 'pending'); // no event: nothing happened yet
    await set('pur_a', `status = 'failed'`);
    await insert('pur_b', 'pending');
    await set('pur_b', `status = 'expired'`);
    await insert('pur_c', 'completed'); // created completed (RevenueCat, dev): completed at once
    await set('pur_c', `provider_ref = 'ref_c'`); // not a status change: no event
    await set('pur_c', `status = 'partially_refunded', credits_reversed = 30`);
    await set('pur_c', `status = 'partially_refunded', credits_reversed = 60`); // refunded further
    await set('pur_c', `status = 'partially_refunded', credits_reversed = 60`); // the same state again: nothing
    await set('pur_c', `status = 'disputed', credits_reversed = 100, credits_disputed = 40`);
    await set('pur_c', `status = 'partially_refunded', credits_reversed = 60, credits_disputed = 0`);
    await set('pur_c', `status = 'refunded', credits_reversed = 100`);

    const { rows } = await t.pg.query(
      `select data->'purchase'->>'id' as purchase, type, data->>'previous_status' as was,
              data->'purchase'->>'status' as status
       from events where type like 'purchase.%' order by id`,
    );
    expect(rows).toEqual([
      { purchase: 'pur_a', type: 'purchase.failed', was: 'pending', status: 'failed' },
      { purchase: 'pur_b', type: 'purchase.expired', was: 'pending', status: 'expired' },
      { purchase: 'pur_c', type: 'purchase.completed', was: null, status: 'completed' },
      { purchase: 'pur_c', type: 'purchase.refunded', was: 'completed', status: 'partially_refunded' },
      {
        purchase: 'pur_c',
        type: 'purchase.refunded',
        was: 'partially_refunded',
        status: 'partially_refunded',
      },
      { purchase: 'pur_c', type: 'purchase.disputed', was: 'partially_refunded', status: 'disputed' },
      { purchase: 'pur_c', type: 'purchase.dispute_closed', was: 'disputed', status: 'partially_refunded' },
      { purchase: 'pur_c', type: 'purchase.refunded', was: 'partially_refunded', status: 'refunded' },
    ]);

    // A change that rolls back takes its event with it.
    const client = await t.pg.connect();
    try {
      await client.query('begin');
      await client.query(`update purchases set status = 'completed' where id = 'pur_a'`);
      await client.query('rollback');
    } finally {
      client.release();
    }
    const { rows: after } = await t.pg.query(
      `select count(*)::int as n from events where type like 'purchase.%'`,
    );
    expect(after[0].n).toBe(8);
  });
});

describe('webhook configuration', () => {
  it('reads the retry schedule with units and refuses what it cannot read, naming the variable', () => {
    expect(loadConfig({}).webhooks.retryScheduleMs).toEqual([
      5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
    ]);
    expect(loadConfig({ WEBHOOK_RETRY_SCHEDULE: '50ms, 2s,1m' }).webhooks.retryScheduleMs).toEqual([
      50, 2000, 60_000,
    ]);
    for (const bad of ['5', '5x', '1h,,2h', '-5s']) {
      expect(() => loadConfig({ WEBHOOK_RETRY_SCHEDULE: bad }), bad).toThrow(/WEBHOOK_RETRY_SCHEDULE/);
    }
    expect(() => loadConfig({ WEBHOOK_POLL_INTERVAL_MS: 'soon' })).toThrow(/WEBHOOK_POLL_INTERVAL_MS/);
    expect(() => loadConfig({ WEBHOOK_ALLOW_PRIVATE_URLS: 'yes' })).toThrow(/WEBHOOK_ALLOW_PRIVATE_URLS/);
  });

  it('allows private URLs outside production only, unless told otherwise', () => {
    expect(loadConfig({}).webhooks).toMatchObject({ allowPrivateUrls: true, httpsOnly: false });
    const prod = { NODE_ENV: 'production', DATABASE_URL: 'postgres://x/y', JWT_SECRET: 'x'.repeat(40) };
    expect(loadConfig(prod).webhooks).toMatchObject({ allowPrivateUrls: false, httpsOnly: true });
    expect(loadConfig({ ...prod, WEBHOOK_ALLOW_PRIVATE_URLS: 'true' }).webhooks.allowPrivateUrls).toBe(true);
  });
});

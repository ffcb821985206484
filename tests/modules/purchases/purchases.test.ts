import { describe, expect, it } from 'vitest';
import { asAdmin, asUser, buildTestApp, createApiKey, tokenFor } from '../../helpers/app.ts';

describe('purchases', () => {
  it('keep what the package was when sold: later edits change nothing already sold', async () => {
    const { app } = await buildTestApp({ ALLOW_DEV_PURCHASES: 'true' });
    const pkg = (
      await app.inject({
        method: 'POST',
        url: '/api/v1/credit-packages',
        headers: asAdmin(),
        payload: { name: 'P', credits: 10, price: 100, currency: 'usd' },
      })
    ).json().data;
    await app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages/purchase',
      headers: asUser('buyer'),
      payload: { packageId: pkg.id },
    });
    await app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${pkg.id}`,
      headers: asAdmin(),
      payload: { credits: 99, price: 5000, currency: 'eur' },
    });
    const list = await app.inject({
      method: 'GET',
      url: '/api/v1/credit-packages/purchases',
      headers: asUser('buyer'),
    });
    expect(list.statusCode).toBe(200);
    expect(list.json().data.items).toHaveLength(1);
    expect(list.json().data.items[0]).toMatchObject({
      credits: 10,
      price: 100,
      currency: 'usd',
      packageId: pkg.id,
    });

    // a package with purchases is deactivated, not deleted, and its data is kept
    const del = await app.inject({
      method: 'DELETE',
      url: `/api/v1/credit-packages/${pkg.id}`,
      headers: asAdmin(),
    });
    expect(del.statusCode).toBe(200);
    expect(del.json().data).toMatchObject({
      deleted: false,
      deactivated: true,
      package: { id: pkg.id, isActive: false },
    });
    const still = await app.inject({ method: 'GET', url: `/api/v1/credit-packages/${pkg.id}` });
    expect(still.json().data).toMatchObject({ isActive: false, credits: 99 });
    const after = await app.inject({
      method: 'GET',
      url: '/api/v1/credit-packages/purchases',
      headers: asUser('buyer'),
    });
    expect(after.json().data.items).toHaveLength(1);
  });

  it('history paginates newest first across pages with no item lost or repeated, and enforces access', async () => {
    const { app } = await buildTestApp({ ALLOW_DEV_PURCHASES: 'true' });
    const pkg = (
      await app.inject({
        method: 'POST',
        url: '/api/v1/credit-packages',
        headers: asAdmin(),
        payload: { name: 'P', credits: 1, price: 1, currency: 'usd' },
      })
    ).json().data;
    const made: string[] = [];
    // some bought concurrently, so several share a created_at millisecond
    const buy = () =>
      app.inject({
        method: 'POST',
        url: '/api/v1/credit-packages/purchase',
        headers: asUser('hist'),
        payload: { packageId: pkg.id },
      });
    for (let i = 0; i < 3; i++) {
      const batch = await Promise.all([buy(), buy(), buy(), buy()]);
      made.push(...batch.map((r) => r.json().data.purchase.id as string));
    }
    const seen: { id: string; createdAt: string }[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 20; page++) {
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const res = await app.inject({
        method: 'GET',
        url: `/api/v1/credit-packages/purchases?limit=5${q}`,
        headers: asUser('hist'),
      });
      const data = res.json().data;
      seen.push(...data.items);
      cursor = data.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toHaveLength(12);
    expect(new Set(seen.map((p) => p.id))).toEqual(new Set(made));
    const times = seen.map((p) => p.createdAt);
    expect([...times].sort().reverse()).toEqual(times);

    // the operator and key variants
    const other = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/hist/purchases',
      headers: asUser('someone'),
    });
    expect(other.statusCode).toBe(403);
    const self = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/hist/purchases',
      headers: asUser('hist'),
    });
    expect(self.json().data.items).toHaveLength(12);
    const ops = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/hist/purchases?limit=2',
      headers: { authorization: `Bearer ${tokenFor('op', ['ops'])}` },
    });
    expect(ops.json().data.items).toHaveLength(2);
    const key = await createApiKey(app, ['ledger:read']);
    const viaKey = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/hist/purchases',
      headers: { 'x-api-key': key },
    });
    expect(viaKey.statusCode).toBe(200);
    const wrongScope = await createApiKey(app, ['balances:read']);
    const denied = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/hist/purchases',
      headers: { 'x-api-key': wrongScope },
    });
    expect(denied.statusCode).toBe(403);
    const anon = await app.inject({ method: 'GET', url: '/api/v1/credit-packages/purchases' });
    expect(anon.statusCode).toBe(401);
  });
});

describe('purchase history keyset', () => {
  it('loses no purchase when many share one created_at', async () => {
    const { app, pg } = await buildTestApp();
    await pg.query(
      `insert into credit_packages (id, name, credits, price, currency) values ('pkg_same', 'P', 1, 1, 'usd')`,
    );
    await pg.query(
      `insert into purchases (id, user_id, package_id, provider, status, credits, price, currency, created_at)
       select 'pur_' || g, 'same_ms', 'pkg_same', 'dev', 'completed', 1, 1, 'usd', '2026-01-01T00:00:00.123456Z'
       from generate_series(1, 7) g`,
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const res = await app.inject({
        method: 'GET',
        url: `/api/v1/credit-packages/purchases?limit=2${q}`,
        headers: asUser('same_ms'),
      });
      const data = res.json().data;
      seen.push(...data.items.map((p: { id: string }) => p.id));
      cursor = data.nextCursor;
      if (!cursor) break;
    }
    expect(seen.sort()).toEqual(['pur_1', 'pur_2', 'pur_3', 'pur_4', 'pur_5', 'pur_6', 'pur_7']);
  });
});

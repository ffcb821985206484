import { beforeAll, describe, expect, it } from 'vitest';
import {
  asAdmin,
  asUser,
  bearer,
  buildTestApp,
  createApiKey,
  grant,
  type TestApp,
  tokenFor,
} from '../../helpers/app.ts';

describe('single purchase reads and ?expand', () => {
  let t: TestApp;
  let pkg: { id: string; name: string };
  let purchaseId: string;

  beforeAll(async () => {
    t = await buildTestApp({ ALLOW_DEV_PURCHASES: 'true' });
    pkg = (
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/credit-packages',
        headers: asAdmin(),
        payload: { name: 'Reads', credits: 10, price: 100, currency: 'usd' },
      })
    ).json().data;
    const bought = await t.app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages/purchase',
      headers: asUser('reader'),
      payload: { packageId: pkg.id },
    });
    purchaseId = bought.json().data.purchase.id;
    // renamed after the sale: an expanded package is the package as it is now
    await t.app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${pkg.id}`,
      headers: asAdmin(),
      payload: { name: 'Reads, renamed' },
    });
  });

  const get = (url: string, headers: Record<string, string>) => t.app.inject({ method: 'GET', url, headers });

  it('GET /credit-packages/purchases/{id}: the caller gets their own purchase; another user gets 404', async () => {
    const own = await get(`/api/v1/credit-packages/purchases/${purchaseId}`, asUser('reader'));
    expect(own.statusCode).toBe(200);
    expect(own.json().data).toMatchObject({
      id: purchaseId,
      userId: 'reader',
      packageId: pkg.id,
      credits: 10,
    });
    expect(own.json().data).not.toHaveProperty('package');

    const other = await get(`/api/v1/credit-packages/purchases/${purchaseId}`, asUser('someone_else'));
    expect(other.statusCode).toBe(404);
    expect(other.json()).toMatchObject({ code: 'not_found' });
    expect((await get('/api/v1/credit-packages/purchases/pur_nope', asUser('reader'))).statusCode).toBe(404);
    expect((await get(`/api/v1/credit-packages/purchases/${purchaseId}`, {})).statusCode).toBe(401);
  });

  it('GET /accounts/{userId}/purchases/{id}: self, admin, ops and ledger:read; wrong user in the path is 404', async () => {
    const url = `/api/v1/accounts/reader/purchases/${purchaseId}`;
    const readKey = await createApiKey(t.app, ['ledger:read']);
    const balanceKey = await createApiKey(t.app, ['balances:read']);
    for (const headers of [
      asUser('reader'),
      asAdmin(),
      bearer(tokenFor('ops_1', ['ops'])),
      { 'x-api-key': readKey },
    ]) {
      const res = await get(url, headers);
      expect(res.statusCode).toBe(200);
      expect(res.json().data.id).toBe(purchaseId);
    }
    expect((await get(url, asUser('someone_else'))).statusCode).toBe(403);
    expect((await get(url, { 'x-api-key': balanceKey })).statusCode).toBe(403);
    const wrongOwner = await get(`/api/v1/accounts/someone_else/purchases/${purchaseId}`, asAdmin());
    expect(wrongOwner.statusCode).toBe(404);
  });

  it('?expand=package puts the package as it is now beside packageId, on lists and single reads', async () => {
    for (const url of [
      `/api/v1/credit-packages/purchases/${purchaseId}?expand=package`,
      `/api/v1/accounts/reader/purchases/${purchaseId}?expand=package`,
    ]) {
      const res = await get(url, asUser('reader'));
      expect(res.statusCode).toBe(200);
      expect(res.json().data).toMatchObject({
        packageId: pkg.id,
        package: { id: pkg.id, name: 'Reads, renamed', credits: 10, isActive: true },
      });
    }
    for (const url of [
      '/api/v1/credit-packages/purchases?expand=package',
      '/api/v1/accounts/reader/purchases?expand=package&limit=5',
    ]) {
      const res = await get(url, asUser('reader'));
      expect(res.statusCode).toBe(200);
      expect(res.json().data.items).toHaveLength(1);
      expect(res.json().data.items[0].package).toMatchObject({ id: pkg.id, name: 'Reads, renamed' });
    }
  });

  it('?expand=purchase puts each entry its purchase, or null for entries without one', async () => {
    await grant(t.app, 'reader', 3);
    for (const url of [
      '/api/v1/credits/ledger?expand=purchase',
      '/api/v1/accounts/reader/ledger?expand=purchase',
    ]) {
      const res = await get(url, asUser('reader'));
      expect(res.statusCode).toBe(200);
      const items = res.json().data.items as { purchaseId: string | null; purchase: unknown }[];
      expect(items).toHaveLength(2);
      expect(items[0]).toMatchObject({ purchaseId: null, purchase: null });
      expect(items[1]).toMatchObject({
        purchaseId,
        purchase: { id: purchaseId, packageId: pkg.id, status: 'completed' },
      });
    }
    const plain = await get('/api/v1/credits/ledger', asUser('reader'));
    expect(plain.json().data.items[1]).not.toHaveProperty('purchase');
  });

  it('answers an unknown expand value with 400 validation_failed naming the parameter', async () => {
    for (const url of [
      '/api/v1/credit-packages/purchases?expand=user',
      `/api/v1/credit-packages/purchases/${purchaseId}?expand=purchase`,
      '/api/v1/accounts/reader/purchases?expand=package&expand=nope',
      '/api/v1/credits/ledger?expand=package',
      '/api/v1/accounts/reader/ledger?expand=',
    ]) {
      const res = await get(url, asUser('reader'));
      expect(res.statusCode, url).toBe(400);
      expect(res.json()).toMatchObject({ code: 'validation_failed' });
      expect(res.json().errors[0], url).toContain('querystring.expand');
    }
  });
});

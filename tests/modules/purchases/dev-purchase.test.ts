import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { asAdmin, asUser, buildTestApp } from '../../helpers/app.ts';
import { expectError } from '../../helpers/envelope.ts';

const base = { name: 'Dev pack', credits: 40, price: 199, currency: 'usd' };

describe('dev purchase route', () => {
  it('is a 404 like any unknown route, and absent from /docs/json, when ALLOW_DEV_PURCHASES is not true', async () => {
    const { app } = await buildTestApp();
    const pkg = (
      await app.inject({ method: 'POST', url: '/api/v1/credit-packages', headers: asAdmin(), payload: base })
    ).json().data;
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages/purchase',
      headers: asUser('u1'),
      payload: { packageId: pkg.id },
    });
    expectError(res, 404, 'not_found');
    const docs = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(Object.keys(docs.json().paths)).not.toContain('/api/v1/credit-packages/purchase');
    const balance = await app.inject({
      method: 'GET',
      url: '/api/v1/credits/balance',
      headers: asUser('u1'),
    });
    expect(balance.json().data.balance).toBe(0);
  });

  it('grants the package when enabled: a completed dev purchase, a grant entry and the new balance', async () => {
    const { app, pg } = await buildTestApp({ ALLOW_DEV_PURCHASES: 'true' });
    const pkg = (
      await app.inject({
        method: 'POST',
        url: '/api/v1/credit-packages',
        headers: asAdmin(),
        payload: { ...base, creditExpiryDays: 10 },
      })
    ).json().data;
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages/purchase',
      headers: asUser('dev_user'),
      payload: { packageId: pkg.id },
    });
    expect(res.statusCode).toBe(201);
    const data = res.json().data;
    expect(data.purchase).toMatchObject({
      userId: 'dev_user',
      packageId: pkg.id,
      provider: 'dev',
      status: 'completed',
      credits: 40,
      price: 199,
      currency: 'usd',
      creditsReversed: 0,
    });
    expect(data.purchase.completedAt).not.toBeNull();
    expect(data.entry).toMatchObject({
      type: 'grant',
      amount: 40,
      balanceAfter: 40,
      source: 'dev',
      purchaseId: data.purchase.id,
    });
    expect(data.balance).toBe(40);

    const again = await app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages/purchase',
      headers: asUser('dev_user'),
      payload: { packageId: pkg.id },
    });
    expect(again.json().data.balance).toBe(80);

    const balance = (
      await app.inject({ method: 'GET', url: '/api/v1/credits/balance', headers: asUser('dev_user') })
    ).json().data;
    expect(balance.balance).toBe(80);
    expect(balance.expiringSoon).toHaveLength(2);
    const lots = await pg.query('select expires_at from credit_lots where user_id = $1', ['dev_user']);
    for (const lot of lots.rows) {
      const days = (new Date(lot.expires_at).getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(9.9);
      expect(days).toBeLessThanOrEqual(10);
    }

    const docs = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(Object.keys(docs.json().paths)).toContain('/api/v1/credit-packages/purchase');
  });

  it('answers 404 for an unknown package, 409 for an inactive one, 401 without a JWT, 400 for a bad body', async () => {
    const { app } = await buildTestApp({ ALLOW_DEV_PURCHASES: 'true' });
    const url = '/api/v1/credit-packages/purchase';
    const inactive = (
      await app.inject({
        method: 'POST',
        url: '/api/v1/credit-packages',
        headers: asAdmin(),
        payload: { ...base, isActive: false },
      })
    ).json().data;
    const unknown = await app.inject({
      method: 'POST',
      url,
      headers: asUser('u'),
      payload: { packageId: 'pkg_x' },
    });
    expect(unknown.statusCode).toBe(404);
    const conflict = await app.inject({
      method: 'POST',
      url,
      headers: asUser('u'),
      payload: { packageId: inactive.id },
    });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().code).toBe('conflict');
    const anon = await app.inject({ method: 'POST', url, payload: { packageId: inactive.id } });
    expect(anon.statusCode).toBe(401);
    const bad = await app.inject({ method: 'POST', url, headers: asUser('u'), payload: { packageId: 5 } });
    expect(bad.statusCode).toBe(400);
    const extra = await app.inject({
      method: 'POST',
      url,
      headers: asUser('u'),
      payload: { packageId: 'x', credits: 1e6 },
    });
    expect(extra.statusCode).toBe(400);
    const balance = await app.inject({ method: 'GET', url: '/api/v1/credits/balance', headers: asUser('u') });
    expect(balance.json().data.balance).toBe(0);
  });

  it('with NODE_ENV=production and ALLOW_DEV_PURCHASES=true the service refuses to start', () => {
    const result = spawnSync(process.execPath, ['src/server.ts'], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        ALLOW_DEV_PURCHASES: 'true',
        DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
        JWT_SECRET: 'a-production-secret-that-is-long-enough-123',
      },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).not.toBe(0);
    expect(result.status).not.toBeNull();
    expect(result.stderr).toContain('ALLOW_DEV_PURCHASES');
  });
});

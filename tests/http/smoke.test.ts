import { describe, expect, it } from 'vitest';
import { asAdmin, buildTestApp, createApiKey, grant } from '../helpers/app.ts';

describe('smoke', () => {
  it('boots and answers', async () => {
    const { app } = await buildTestApp();
    const r = await app.inject({ method: 'GET', url: '/readyz' });
    expect(r.statusCode).toBe(200);
    await grant(app, 'u1', 5);
    const key = await createApiKey(app, ['credits:debit']);
    const d = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/u1/debits',
      headers: { 'x-api-key': key, 'idempotency-key': 'k1' },
      payload: { amount: 2 },
    });
    expect(d.json()).toMatchObject({ statusCode: 201 });
    const b = await app.inject({ method: 'GET', url: '/api/v1/accounts/u1/balance', headers: asAdmin() });
    expect(b.json().data.balance).toBe(3);
  });
});

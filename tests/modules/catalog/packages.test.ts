import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import { asAdmin, asUser, buildTestApp, createApiKey } from '../../helpers/app.ts';
import { expectError } from '../../helpers/envelope.ts';

let app: App;
let writerKey: string;
let readerKey: string;

const base = { name: 'Starter', credits: 100, price: 499, currency: 'usd' };

async function create(payload: Record<string, unknown>, headers: Record<string, string> = asAdmin()) {
  return app.inject({ method: 'POST', url: '/api/v1/credit-packages', headers, payload });
}

beforeAll(async () => {
  ({ app } = await buildTestApp());
  writerKey = await createApiKey(app, ['packages:write']);
  readerKey = await createApiKey(app, ['balances:read']);
});

describe('creating packages', () => {
  it('creates a package with every field and returns it in the envelope', async () => {
    const res = await create({
      ...base,
      description: 'A small pack',
      stripePriceId: 'price_123',
      revenuecatProductIds: ['com.app.credits100'],
      creditExpiryDays: 30,
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({ isSuccess: true, statusCode: 201, errors: [] });
    expect(body.data).toMatchObject({
      name: 'Starter',
      description: 'A small pack',
      credits: 100,
      price: 499,
      currency: 'usd',
      isActive: true,
      stripePriceId: 'price_123',
      revenuecatProductIds: ['com.app.credits100'],
      creditExpiryDays: 30,
    });
    expect(body.data.id).toMatch(/^pkg_/);
    const got = await app.inject({ method: 'GET', url: `/api/v1/credit-packages/${body.data.id}` });
    expect(got.json().data).toEqual(body.data);
  });

  it('accepts a packages:write API key', async () => {
    const res = await create(base, { 'x-api-key': writerKey });
    expect(res.statusCode).toBe(201);
  });

  it.each([
    ['credits 0', { credits: 0 }, 'body.credits'],
    ['credits negative', { credits: -5 }, 'body.credits'],
    ['credits fractional', { credits: 1.5 }, 'body.credits'],
    ['credits as string', { credits: '100' }, 'body.credits'],
    ['price negative', { price: -1 }, 'body.price'],
    ['price fractional', { price: 4.99 }, 'body.price'],
    ['currency upper case', { currency: 'USD' }, 'body.currency'],
    ['currency not ISO 4217', { currency: 'abc' }, 'body.currency'],
    ['expiry days 0', { creditExpiryDays: 0 }, 'body.creditExpiryDays'],
    ['expiry days 3651', { creditExpiryDays: 3651 }, 'body.creditExpiryDays'],
    ['empty name', { name: '' }, 'body.name'],
    ['unknown field', { color: 'red' }, "unknown field 'color'"],
  ])('rejects %s with 400 naming the field', async (_label, change, field) => {
    const res = await create({ ...base, ...change });
    expectError(res, 400, 'validation_failed');
    const body = res.json();
    expect(body.errors.join(' ')).toContain(field);
  });

  it('rejects a missing required field', async () => {
    const res = await create({ name: 'x', price: 1, currency: 'usd' });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors[0]).toContain('credits');
  });

  it('accepts creditExpiryDays null, 1 and 3650', async () => {
    for (const days of [null, 1, 3650]) {
      const res = await create({ ...base, creditExpiryDays: days });
      expect(res.statusCode).toBe(201);
      expect(res.json().data.creditExpiryDays).toBe(days);
    }
  });

  it('refuses a RevenueCat product id that another package has (409)', async () => {
    expect((await create({ ...base, revenuecatProductIds: ['dup.product'] })).statusCode).toBe(201);
    const res = await create({ ...base, revenuecatProductIds: ['dup.product'] });
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('conflict');
  });

  it('refuses concurrent creates claiming the same product id: exactly one wins', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () => create({ ...base, revenuecatProductIds: ['race.product'] })),
    );
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(7);
  });

  it('needs admin or packages:write', async () => {
    expect((await create(base, {})).statusCode).toBe(401);
    const user = await create(base, asUser('u_pkg'));
    expect(user.statusCode).toBe(403);
    expect(user.json().code).toBe('forbidden');
    expect((await create(base, { 'x-api-key': readerKey })).statusCode).toBe(403);
  });
});

describe('reading and listing', () => {
  it('unknown package is 404 in the envelope', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/credit-packages/pkg_missing' });
    expectError(res, 404, 'not_found');
  });

  it('the public list shows active packages only; includeInactive needs admin or packages:write', async () => {
    const { app: fresh } = await buildTestApp();
    const mk = async (name: string, isActive: boolean) =>
      (
        await fresh.inject({
          method: 'POST',
          url: '/api/v1/credit-packages',
          headers: asAdmin(),
          payload: { ...base, name, isActive },
        })
      ).json().data.id as string;
    const active = await mk('Active', true);
    const inactive = await mk('Inactive', false);

    const pub = await fresh.inject({ method: 'GET', url: '/api/v1/credit-packages' });
    expect(pub.statusCode).toBe(200);
    expect(pub.json().data.items.map((p: { id: string }) => p.id)).toEqual([active]);

    const anon = await fresh.inject({ method: 'GET', url: '/api/v1/credit-packages?includeInactive=true' });
    expect(anon.statusCode).toBe(401);
    const user = await fresh.inject({
      method: 'GET',
      url: '/api/v1/credit-packages?includeInactive=true',
      headers: asUser('u1'),
    });
    expect(user.statusCode).toBe(403);
    const admin = await fresh.inject({
      method: 'GET',
      url: '/api/v1/credit-packages?includeInactive=true',
      headers: asAdmin(),
    });
    expect(
      admin
        .json()
        .data.items.map((p: { id: string }) => p.id)
        .sort(),
    ).toEqual([active, inactive].sort());
    const key = await createApiKey(fresh, ['packages:write']);
    const viaKey = await fresh.inject({
      method: 'GET',
      url: '/api/v1/credit-packages?includeInactive=true',
      headers: { 'x-api-key': key },
    });
    expect(viaKey.json().data.items).toHaveLength(2);

    // an inactive package can still be read by id
    const one = await fresh.inject({ method: 'GET', url: `/api/v1/credit-packages/${inactive}` });
    expect(one.json().data.isActive).toBe(false);
  });

  it('paginates the list with keyset cursors, no package lost or repeated', async () => {
    const { app: fresh } = await buildTestApp();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await fresh.inject({
        method: 'POST',
        url: '/api/v1/credit-packages',
        headers: asAdmin(),
        payload: { ...base, name: `P${i}` },
      });
      ids.push(r.json().data.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const q: string = cursor ? `?limit=3&cursor=${cursor}` : '?limit=3';
      const res = await fresh.inject({ method: 'GET', url: `/api/v1/credit-packages${q}` });
      const data = res.json().data;
      seen.push(...data.items.map((p: { id: string }) => p.id));
      cursor = data.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(new Set(ids));
    const bad = await fresh.inject({ method: 'GET', url: '/api/v1/credit-packages?cursor=notacursor' });
    expect(bad.statusCode).toBe(400);
    const tooMany = await fresh.inject({ method: 'GET', url: '/api/v1/credit-packages?limit=101' });
    expect(tooMany.statusCode).toBe(400);
  });
});

describe('updating and deleting', () => {
  it('updates any field, and validates like create', async () => {
    const id = (await create(base)).json().data.id;
    const res = await app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${id}`,
      headers: asAdmin(),
      payload: {
        name: 'Renamed',
        credits: 250,
        price: 999,
        currency: 'eur',
        isActive: false,
        stripePriceId: 'price_new',
        revenuecatProductIds: ['upd.a', 'upd.b'],
        creditExpiryDays: 7,
        description: 'new',
      },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({
      name: 'Renamed',
      credits: 250,
      price: 999,
      currency: 'eur',
      isActive: false,
      stripePriceId: 'price_new',
      revenuecatProductIds: ['upd.a', 'upd.b'],
      creditExpiryDays: 7,
    });
    const clear = await app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${id}`,
      headers: asAdmin(),
      payload: { creditExpiryDays: null, revenuecatProductIds: [] },
    });
    expect(clear.json().data).toMatchObject({
      creditExpiryDays: null,
      revenuecatProductIds: [],
      name: 'Renamed',
    });

    const bad = await app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${id}`,
      headers: asAdmin(),
      payload: { credits: 0 },
    });
    expect(bad.statusCode).toBe(400);
    const empty = await app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${id}`,
      headers: asAdmin(),
      payload: {},
    });
    expect(empty.statusCode).toBe(400);
    const missing = await app.inject({
      method: 'PUT',
      url: '/api/v1/credit-packages/pkg_nope',
      headers: asAdmin(),
      payload: { name: 'x' },
    });
    expect(missing.statusCode).toBe(404);
  });

  it('keeps a product id with its own package on update, refuses another package taking it', async () => {
    const a = (await create({ ...base, revenuecatProductIds: ['own.a'] })).json().data.id;
    const b = (await create(base)).json().data.id;
    const same = await app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${a}`,
      headers: asAdmin(),
      payload: { revenuecatProductIds: ['own.a', 'own.b'] },
    });
    expect(same.statusCode).toBe(200);
    const steal = await app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${b}`,
      headers: asAdmin(),
      payload: { revenuecatProductIds: ['own.a'] },
    });
    expect(steal.statusCode).toBe(409);
  });

  it('deletes a package without purchases', async () => {
    const id = (await create(base)).json().data.id;
    const res = await app.inject({
      method: 'DELETE',
      url: `/api/v1/credit-packages/${id}`,
      headers: asAdmin(),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ deleted: true, deactivated: false });
    const gone = await app.inject({ method: 'GET', url: `/api/v1/credit-packages/${id}` });
    expect(gone.statusCode).toBe(404);
    const again = await app.inject({
      method: 'DELETE',
      url: `/api/v1/credit-packages/${id}`,
      headers: asAdmin(),
    });
    expect(again.statusCode).toBe(404);
  });
});

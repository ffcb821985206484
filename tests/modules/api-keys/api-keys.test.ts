import { beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, asUser, buildTestApp, createApiKey, grant, type TestApp } from '../../helpers/app.ts';
import { expectError } from '../../helpers/envelope.ts';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('API keys', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });

  const create = (payload: unknown, headers = asAdmin()) =>
    t.app.inject({ method: 'POST', url: '/api/v1/api-keys', headers, payload: payload as string });
  const list = (query = '') =>
    t.app.inject({ method: 'GET', url: `/api/v1/api-keys${query}`, headers: asAdmin() });
  const revoke = (id: string) =>
    t.app.inject({ method: 'DELETE', url: `/api/v1/api-keys/${id}`, headers: asAdmin() });

  it('create → use → scope refused → revoke → 401', async () => {
    await grant(t.app, 'svc_user', 10);

    const created = await create({ name: 'billing backend', scopes: ['balances:read', 'credits:debit'] });
    expect(created.statusCode).toBe(201);
    const body = created.json();
    expect(body).toMatchObject({ isSuccess: true, statusCode: 201, errors: [] });
    expect(body.data).toEqual({
      id: expect.any(String),
      name: 'billing backend',
      scopes: ['balances:read', 'credits:debit'],
      key: expect.any(String),
      createdAt: expect.stringMatching(ISO),
    });
    const { id, key } = body.data as { id: string; key: string };
    // Enough entropy: well over 128 bits of base64url after the prefix.
    expect(key).toMatch(/^ck_[A-Za-z0-9_-]{40,}$/);

    // Use it, in both headers.
    const viaHeader = await t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/svc_user/balance',
      headers: { 'x-api-key': key },
    });
    expect(viaHeader.statusCode).toBe(200);
    expect(viaHeader.json().data.balance).toBe(10);
    const viaBearer = await t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/svc_user/balance',
      headers: { authorization: `Bearer ${key}` },
    });
    expect(viaBearer.statusCode).toBe(200);
    const spent = await t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/svc_user/debits',
      headers: { 'x-api-key': key, 'idempotency-key': 'svc-1' },
      payload: { amount: 4 },
    });
    expect(spent.statusCode).toBe(201);
    expect(spent.json().data.balance).toBe(6);

    // A route that needs another scope, and admin routes: 403.
    const ledger = await t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/svc_user/ledger',
      headers: { 'x-api-key': key },
    });
    expectError(ledger, 403, 'forbidden');
    expect(ledger.json().errors.join(' ')).toContain('ledger:read');
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/api-keys', headers: { 'x-api-key': key } }),
      403,
      'forbidden',
    );
    expectError(
      await create({ name: 'escalate', scopes: ['packages:write'] }, { authorization: `Bearer ${key}` }),
      403,
      'forbidden',
    );
    // A key is not a user: user routes refuse it.
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/credits/balance', headers: { 'x-api-key': key } }),
      403,
      'forbidden',
    );

    // Revoke: it stops working at once, in both headers.
    const revoked = await revoke(id);
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json().data).toMatchObject({ id, revokedAt: expect.stringMatching(ISO) });
    for (const headers of [{ 'x-api-key': key }, { authorization: `Bearer ${key}` }]) {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/accounts/svc_user/balance', headers });
      expectError(res, 401, 'unauthorized');
    }
    const { rows } = await t.pg.query('select revoked_at from api_keys where id = $1', [id]);
    expect(rows[0].revoked_at).toBeInstanceOf(Date);
  });

  it('stores only a hash: no column of the row holds the key', async () => {
    const created = (await create({ name: 'hash check', scopes: ['ledger:read'] })).json().data;
    const { rows } = await t.pg.query('select * from api_keys where id = $1', [created.id]);
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row.key_hash).toBeTruthy();
    expect(row.key_hash).not.toBe(created.key);
    expect(row.key_hash).not.toContain(created.key.slice(3));
    expect(JSON.stringify(row)).not.toContain(created.key);
    expect(JSON.stringify(row)).not.toContain(created.key.slice(3));
  });

  it('never lists the secret, and records lastUsedAt', async () => {
    const created = (await create({ name: 'listed', scopes: ['balances:read'] })).json().data;
    const before = (await list('?limit=100'))
      .json()
      .data.items.find((k: { id: string }) => k.id === created.id);
    expect(before).toEqual({
      id: created.id,
      name: 'listed',
      scopes: ['balances:read'],
      prefix: expect.any(String),
      createdAt: created.createdAt,
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(created.key.startsWith(before.prefix)).toBe(true);
    expect(before.prefix.length).toBeLessThan(created.key.length / 2);

    await t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/x/balance',
      headers: { 'x-api-key': created.key },
    });
    let used: { lastUsedAt: string | null } | undefined;
    for (let i = 0; i < 50 && !used?.lastUsedAt; i++) {
      await new Promise((r) => setTimeout(r, 20));
      used = (await list('?limit=100')).json().data.items.find((k: { id: string }) => k.id === created.id);
    }
    expect(used?.lastUsedAt).toMatch(ISO);

    const res = await list('?limit=100');
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain(created.key);
    expect(res.body).not.toContain(created.key.slice(3));
    for (const item of res.json().data.items) expect(item).not.toHaveProperty('key');
  });

  it('answers 409 for revoking twice and 404 for an unknown id', async () => {
    const created = (await create({ name: 'twice', scopes: ['ledger:read'] })).json().data;
    expect((await revoke(created.id)).statusCode).toBe(200);
    expectError(await revoke(created.id), 409, 'conflict');
    expectError(await revoke('key_does_not_exist'), 404, 'not_found');
  });

  it('rejects invalid keys and invalid create bodies', async () => {
    expectError(
      await t.app.inject({
        method: 'GET',
        url: '/api/v1/accounts/x/balance',
        headers: { 'x-api-key': 'ck_bogus' },
      }),
      401,
      'unauthorized',
    );
    expectError(await create({ name: 'bad scope', scopes: ['everything'] }), 400, 'validation_failed');
    expectError(await create({ name: 'no scopes', scopes: [] }), 400, 'validation_failed');
    expectError(await create({ name: '', scopes: ['ledger:read'] }), 400, 'validation_failed');
    expectError(
      await create({ name: 'x', scopes: ['ledger:read'], key: 'ck_chosen' }),
      400,
      'validation_failed',
    );
    expectError(await create({ name: 'x', scopes: ['ledger:read'] }, asUser('u1')), 403, 'forbidden');
    expectError(
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/api-keys',
        payload: { name: 'x', scopes: ['ledger:read'] },
      }),
      401,
      'unauthorized',
    );
  });

  it('paginates the list by keyset: every key once, newest first', async () => {
    for (let i = 0; i < 7; i++) await createApiKey(t.app, ['ledger:read'], `page ${i}`);
    // Rows sharing one created_at exercise the id tie-breaker of the keyset.
    const same = new Date('2025-01-01T00:00:00.000Z');
    for (let i = 0; i < 5; i++) {
      await t.pg.query(
        `insert into api_keys (id, name, prefix, key_hash, scopes, created_at)
         values ($1, $2, 'ck_tie', $3, '{ledger:read}', $4)`,
        [`key_tie_${i}`, `tie ${i}`, `hash-${i}-${Math.random()}`, same],
      );
    }
    const { rows } = await t.pg.query('select id from api_keys');
    const all = rows.map((r: { id: string }) => r.id);
    expect(all.length).toBeGreaterThan(12);

    const seen: string[] = [];
    const created: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await list(`?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.statusCode).toBe(200);
      const data = res.json().data as {
        items: { id: string; createdAt: string }[];
        nextCursor: string | null;
      };
      expect(data.items.length).toBeLessThanOrEqual(3);
      seen.push(...data.items.map((k) => k.id));
      created.push(...data.items.map((k) => k.createdAt));
      cursor = data.nextCursor;
      pages++;
      expect(pages).toBeLessThan(50);
    } while (cursor);

    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...all].sort());
    const sorted = [...created].sort().reverse();
    expect(created).toEqual(sorted);

    // The default page is 20 and the last page has no cursor.
    const whole = (await list()).json().data;
    expect(whole.items.length).toBe(Math.min(20, all.length));
    const big = (await list('?limit=100')).json().data;
    expect(big.items.length).toBe(all.length);
    expect(big.nextCursor).toBeNull();
  });

  it('loses no key when several share one millisecond (Postgres keeps microseconds)', async () => {
    const fresh = await buildTestApp();
    const stamps = ['123999', '123800', '123456', '123100', '123000'];
    for (const [i, us] of stamps.entries()) {
      await fresh.pg.query(
        `insert into api_keys (id, name, prefix, key_hash, scopes, created_at)
         values ($1, $2, 'ck_us', $3, '{ledger:read}', $4::timestamptz)`,
        [`key_us_${i}`, `us ${i}`, `hash-us-${i}`, `2025-03-01T00:00:00.${us}Z`],
      );
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 20; page++) {
      const url = `/api/v1/api-keys?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await fresh.app.inject({ method: 'GET', url, headers: asAdmin() });
      expect(res.statusCode).toBe(200);
      const data = res.json().data as { items: { id: string }[]; nextCursor: string | null };
      seen.push(...data.items.map((k) => k.id));
      cursor = data.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(['key_us_0', 'key_us_1', 'key_us_2', 'key_us_3', 'key_us_4']);
  });

  it('rejects an invalid limit or cursor', async () => {
    expectError(await list('?limit=0'), 400, 'validation_failed');
    expectError(await list('?limit=101'), 400, 'validation_failed');
    expectError(await list('?cursor=not-a-cursor'), 400, 'validation_failed');
    const wrongShape = Buffer.from(JSON.stringify([1, 2, 3])).toString('base64url');
    expectError(await list(`?cursor=${wrongShape}`), 400, 'validation_failed');
    // A forged timestamp Postgres would refuse is the client's error, not a 500.
    for (const ts of ['2025-02-30T00:00:00.000000Z', '2025-01-01 00:00:00', 'yesterday']) {
      const forged = Buffer.from(JSON.stringify([ts, 'key_x'])).toString('base64url');
      expectError(await list(`?cursor=${forged}`), 400, 'validation_failed');
    }
  });
});

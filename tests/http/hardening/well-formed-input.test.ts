import { beforeAll, describe, expect, it } from 'vitest';
import {
  asAdmin,
  asUser,
  bearer,
  buildTestApp,
  createApiKey,
  type TestApp,
  tokenFor,
} from '../../helpers/app.ts';
import { expectError } from '../../helpers/envelope.ts';
import { cursorOf, deepJson } from './hardening-helpers.ts';

const NUL = '\u0000';
const LONE = '\ud800';

describe('text that Postgres cannot store is a 400 naming the field, never a 500', () => {
  let t: TestApp;
  let debitKey: string;
  beforeAll(async () => {
    t = await buildTestApp();
    debitKey = await createApiKey(t.app, ['credits:debit']);
  });

  const createPackage = (fields: Record<string, unknown>) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages',
      headers: asAdmin(),
      payload: { name: 'Pack', credits: 10, price: 100, currency: 'usd', ...fields },
    });

  const debit = (payload: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/wf_user/debits',
      headers: { 'x-api-key': debitKey, 'idempotency-key': `k-${Math.random()}`, ...headers },
      payload: payload as Record<string, unknown>,
    });

  it.each([
    ['NUL', NUL],
    ['a lone high surrogate', LONE],
    ['a lone low surrogate', '\udc00'],
  ])('%s in a package name or description', async (_what, bad) => {
    expect(expectError(await createPackage({ name: `Pack${bad}` }), 400, 'validation_failed')).toMatch(
      /body\.name must be well-formed/,
    );
    expect(
      expectError(await createPackage({ description: `about${bad}` }), 400, 'validation_failed'),
    ).toMatch(/body\.description/);
    const { rows } = await t.pg.query('select count(*)::int as n from credit_packages');
    expect(rows[0].n).toBe(0);
  });

  it('NUL or a lone surrogate in a debit reason, metadata value or metadata key', async () => {
    expect(expectError(await debit({ amount: 1, reason: `r${NUL}` }), 400, 'validation_failed')).toMatch(
      /body\.reason/,
    );
    expect(
      expectError(await debit({ amount: 1, metadata: { note: `x${LONE}` } }), 400, 'validation_failed'),
    ).toMatch(/body\.metadata\.note/);
    expect(
      expectError(await debit({ amount: 1, metadata: { [`k${NUL}`]: 'v' } }), 400, 'validation_failed'),
    ).toMatch(/body\.metadata\.k\\u0000/);
  });

  it('NUL or a lone surrogate in an Idempotency-Key header', async () => {
    for (const bad of [`key${NUL}`, `key${LONE}`]) {
      const res = await debit({ amount: 1 }, { 'idempotency-key': bad });
      expect(expectError(res, 400, 'validation_failed')).toMatch(/headers\.idempotency-key/);
    }
  });

  it('%00 in a path parameter, even without credentials', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/credit-packages/%00' });
    expect(expectError(res, 400, 'validation_failed')).toMatch(/params\.id/);
    const user = await t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/a%00b/balance',
      headers: asAdmin(),
    });
    expect(expectError(user, 400, 'validation_failed')).toMatch(/params\.userId/);
  });

  it('NUL in a query parameter', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/api-keys?cursor=%00', headers: asAdmin() });
    expect(expectError(res, 400, 'validation_failed')).toMatch(/querystring\.cursor must be well-formed/);
  });

  it('NUL, a lone surrogate or year 0000 inside a pagination cursor', async () => {
    const cursors = [
      cursorOf(JSON.stringify([NUL])),
      cursorOf('["\\ud800"]'),
      cursorOf(JSON.stringify(['2026-01-01T00:00:00.000000Z', `key${NUL}`])),
      cursorOf(JSON.stringify(['0000-01-01T00:00:00.000000Z', 'key_1'])),
    ];
    for (const [url, cursor] of [
      ['/api/v1/accounts', cursors[0]],
      ['/api/v1/accounts', cursors[1]],
      ['/api/v1/api-keys', cursors[2]],
      ['/api/v1/api-keys', cursors[3]],
    ]) {
      const res = await t.app.inject({ method: 'GET', url: `${url}?cursor=${cursor}`, headers: asAdmin() });
      expect(expectError(res, 400, 'validation_failed')).toMatch(/querystring\.cursor/);
    }
  });

  it('a JWT whose sub is ill-formed is 401: victim\\ud800 and victim\\udc00 are not victim\\uFFFD', async () => {
    for (const sub of ['victim\ud800', 'victim\udc00', `victim${NUL}`]) {
      const res = await t.app.inject({
        method: 'GET',
        url: '/api/v1/credits/balance',
        headers: bearer(tokenFor(sub)),
      });
      expect(expectError(res, 401, 'unauthorized')).toMatch(/sub/);
    }
    // U+FFFD itself is well-formed text: a user of its own, which the ill-formed subs can no longer reach.
    const ok = await t.app.inject({
      method: 'GET',
      url: '/api/v1/credits/balance',
      headers: asUser('victim\uFFFD'),
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().data.userId).toBe('victim\uFFFD');
  });

  it('debit metadata nested 2,000 levels deep is a 400, and the service keeps answering', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/wf_user/debits',
      headers: {
        'x-api-key': debitKey,
        'idempotency-key': 'deep-1',
        'content-type': 'application/json',
      },
      payload: `{"amount":1,"metadata":${deepJson(2000)}}`,
    });
    expectError(res, 400, 'validation_failed');
    const health = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
  });
});

describe('metadata is flat: at most 50 keys of 1..40 characters, scalar values', () => {
  let t: TestApp;
  let debitKey: string;
  beforeAll(async () => {
    t = await buildTestApp();
    debitKey = await createApiKey(t.app, ['credits:debit']);
    await t.app.services.ledger.grant(
      {
        userId: 'meta_user',
        amount: 1000,
        source: 'dev',
        purchaseId: null,
        idempotencyKey: 'meta-grant',
        reason: 'test',
        expiresAt: null,
      },
      t.app.db,
    );
  });

  const debit = (metadata: unknown) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/meta_user/debits',
      headers: { 'x-api-key': debitKey, 'idempotency-key': `k-${Math.random()}` },
      payload: { amount: 1, metadata } as Record<string, unknown>,
    });

  const keys = (n: number, value: unknown = 'v') =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`key_${i}`, value]));

  it('accepts 50 keys with string, number, boolean and null values', async () => {
    const metadata = { ...keys(46), s: 'x'.repeat(500), n: 1.5, b: true, z: null };
    const res = await debit(metadata);
    expect(res.statusCode).toBe(201);
    expect(res.json().data.entry.metadata).toEqual(metadata);
  });

  it('names the key that breaks the key rule', async () => {
    const msg = expectError(await debit({ ['k'.repeat(41)]: 'v' }), 400, 'validation_failed');
    expect(msg).toBe(`body.metadata key '${'k'.repeat(41)}' must NOT have more than 40 characters`);
  });

  it.each([
    ['51 keys', keys(51)],
    // ~890 KB: under the body limit, so it is the metadata rule that refuses it.
    ['100,000 keys', Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [i.toString(36), 0]))],
    ['an empty key', { '': 'v' }],
    ['a key of 41 characters', { ['k'.repeat(41)]: 'v' }],
    ['a string value of 501 characters', { note: 'x'.repeat(501) }],
    ['a nested object', { nested: { a: 1 } }],
    ['an array value', { list: [1, 2] }],
    ['an array instead of an object', [1, 2]],
  ])('refuses %s (400) and writes nothing', async (_what, metadata) => {
    expect(expectError(await debit(metadata), 400, 'validation_failed')).toMatch(/body\.metadata/);
    const { rows } = await t.pg.query(
      "select count(*)::int as n from ledger_entries where user_id = 'meta_user' and type = 'debit'",
    );
    expect(rows[0].n).toBe(1);
  });
});

describe('balances stay within 2^53-1', () => {
  it('a grant past 2^53-1 is a 409 conflict; the balance stays readable and unchanged', async () => {
    const t = await buildTestApp({ ALLOW_DEV_PURCHASES: 'true' });
    const pack = await t.app.inject({
      method: 'POST',
      url: '/api/v1/credit-packages',
      headers: asAdmin(),
      payload: { name: 'Huge', credits: Number.MAX_SAFE_INTEGER, price: 0, currency: 'usd' },
    });
    expect(pack.statusCode).toBe(201);
    const buy = () =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/credit-packages/purchase',
        headers: asUser('rich'),
        payload: { packageId: pack.json().data.id },
      });
    expect((await buy()).statusCode).toBe(201);
    expect(expectError(await buy(), 409, 'conflict')).toMatch(/9007199254740991/);

    const balance = await t.app.inject({
      method: 'GET',
      url: '/api/v1/credits/balance',
      headers: asUser('rich'),
    });
    expect(balance.statusCode).toBe(200);
    expect(balance.json().data.balance).toBe(Number.MAX_SAFE_INTEGER);
    const { rows } = await t.pg.query("select count(*)::int as n from ledger_entries where user_id = 'rich'");
    expect(rows[0].n).toBe(1);
  });

  it('the database refuses a balance past 2^53-1 whatever writes it', async () => {
    const t = await buildTestApp();
    await expect(
      t.pg.query("insert into accounts (user_id, balance) values ('raw', 9007199254740992)"),
    ).rejects.toThrow(/accounts_balance_safe/);
  });
});

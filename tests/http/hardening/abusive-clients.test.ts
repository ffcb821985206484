import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashApiKey, isPlausibleApiKey } from '../../../src/modules/api-keys/api-keys.service.ts';
import { safeEqual } from '../../../src/lib/secrets.ts';
import { asUser, bearer, buildTestApp, createApiKey, type TestApp, tokenFor } from '../../helpers/app.ts';
import { expectError } from '../../helpers/envelope.ts';

/** Counts API key verifications (each one past the cache is a database lookup). */
function countLookups(t: TestApp) {
  const counter = { n: 0 };
  const keys = t.app.services.apiKeys;
  const verify = keys.verify.bind(keys);
  keys.verify = (key: string) => {
    counter.n++;
    return verify(key);
  };
  return counter;
}

const balanceWith = (t: TestApp, headers: Record<string, string>) =>
  t.app.inject({ method: 'GET', url: '/api/v1/accounts/someone/balance', headers });

/** A key shaped like the keys issued before the checksum: ck_ and 43 base64url characters. */
const legacyKey = () => `ck_${randomBytes(32).toString('base64url')}`;

describe('failed authentications are limited per IP before any database work', () => {
  it('answers 429 rate_limited with Retry-After once an address is over AUTH_FAILURES_PER_MINUTE', async () => {
    const t = await buildTestApp({ AUTH_FAILURES_PER_MINUTE: '5' });
    const lookups = countLookups(t);
    for (let i = 0; i < 5; i++) {
      expectError(await balanceWith(t, { 'x-api-key': legacyKey() }), 401, 'unauthorized');
    }
    expect(lookups.n).toBe(5);
    // Over the limit: an invented key is refused before it is looked up, and so is a bad token.
    const limited = await balanceWith(t, { 'x-api-key': legacyKey() });
    expect(expectError(limited, 429, 'rate_limited')).toMatch(/failed authentications/);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expectError(await balanceWith(t, bearer('not.a.jwt')), 429, 'rate_limited');
    expectError(await balanceWith(t, bearer(`${tokenFor('someone')}x`)), 429, 'rate_limited');
    expect(lookups.n).toBe(5);
    // Requests without credentials are not failures and are not refused.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/credit-packages' })).statusCode).toBe(200);
  });

  it('lets through, from a limited address, only what needs no database: valid tokens and keys verified before', async () => {
    const t = await buildTestApp({ AUTH_FAILURES_PER_MINUTE: '3' });
    const known = await createApiKey(t.app, ['balances:read']);
    const unseen = await createApiKey(t.app, ['balances:read']);
    expect((await balanceWith(t, { 'x-api-key': known })).statusCode).toBe(200);
    for (let i = 0; i < 3; i++)
      expectError(await balanceWith(t, bearer(`bad.${i}.jwt`)), 401, 'unauthorized');

    const lookups = countLookups(t);
    // A user behind the same address (NAT, proxy) with a valid token: verified without the database.
    expect((await balanceWith(t, asUser('someone'))).statusCode).toBe(200);
    // A backend whose key this process verified before keeps working.
    expect((await balanceWith(t, { 'x-api-key': known })).statusCode).toBe(200);
    // A key never verified here would need a lookup: refused until the minute ends, valid or not.
    expectError(await balanceWith(t, { 'x-api-key': unseen }), 429, 'rate_limited');
    expect(lookups.n).toBe(1);
  });

  it('0 turns the limit off', async () => {
    const t = await buildTestApp({ AUTH_FAILURES_PER_MINUTE: '0' });
    for (let i = 0; i < 70; i++) expectError(await balanceWith(t, bearer('bad')), 401, 'unauthorized');
  });
});

describe('API keys carry a checksum', () => {
  it('new keys pass the checksum; a key with a character changed is refused without a lookup', async () => {
    const t = await buildTestApp();
    const key = await createApiKey(t.app, ['balances:read']);
    expect(key).toMatch(/^ck_[A-Za-z0-9_-]{49}$/);
    expect(isPlausibleApiKey(key)).toBe(true);
    const lookups = countLookups(t);
    expect((await balanceWith(t, { 'x-api-key': key })).statusCode).toBe(200);
    expect(lookups.n).toBe(1);

    const last = key.at(-1) === 'A' ? 'B' : 'A';
    for (const forged of [`${key.slice(0, -1)}${last}`, 'ck_bogus', `${key}x`, `ck_${'a'.repeat(200)}`]) {
      expectError(await balanceWith(t, { 'x-api-key': forged }), 401, 'unauthorized');
    }
    expect(lookups.n).toBe(1);
  });

  it('keys issued before the checksum keep working', async () => {
    const t = await buildTestApp();
    const key = legacyKey();
    await t.pg.query(
      `insert into api_keys (id, name, prefix, key_hash, scopes) values ('key_legacy', 'old', $1, $2, '{balances:read}')`,
      [key.slice(0, 9), hashApiKey(key)],
    );
    expect((await balanceWith(t, { 'x-api-key': key })).statusCode).toBe(200);
    expect((await balanceWith(t, bearer(key))).statusCode).toBe(200);
  });
});

describe('secrets are compared in constant time by one helper', () => {
  it('safeEqual compares secrets of any length', () => {
    expect(safeEqual('Bearer abc', 'Bearer abc')).toBe(true);
    expect(safeEqual('Bearer abd', 'Bearer abc')).toBe(false);
    expect(safeEqual('', 'Bearer abc')).toBe(false);
    expect(safeEqual('Bearer abc and more', 'Bearer abc')).toBe(false);
  });

  it('/metrics needs its token, whatever the length of what is sent', async () => {
    const t = await buildTestApp({ METRICS_TOKEN: 'metrics-secret' });
    for (const authorization of ['Bearer metrics-secreT', 'Bearer m', `Bearer ${'x'.repeat(1000)}`]) {
      const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization } });
      expect(res.statusCode).toBe(401);
    }
    const ok = await t.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: 'Bearer metrics-secret' },
    });
    expect(ok.statusCode).toBe(200);
  });
});

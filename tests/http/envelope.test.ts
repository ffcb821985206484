import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { asAdmin, asUser, buildTestApp, createApiKey, type TestApp } from '../helpers/app.ts';
import { expectError } from '../helpers/envelope.ts';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const debit = (t: TestApp, payload: unknown, headers: Record<string, string> = {}) =>
  t.app.inject({
    method: 'POST',
    url: '/api/v1/accounts/user_env/debits',
    headers: { ...asAdmin(), 'idempotency-key': `k-${Math.random()}`, ...headers },
    payload: payload as string,
  });

describe('the response envelope', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({}, undefined, {
      beforeReady: (app) => {
        // Failures a handler does not expect: a thrown Error carrying SQL in its message, and a real query error.
        app.get('/api/v1/test/throws', async () => {
          throw new Error('select secret_column from internal_table where id = 1');
        });
        app.get('/api/v1/test/bad-sql', async () => {
          await sql.raw('select secret_column from no_such_internal_table').execute(app.db);
          return { never: true };
        });
        app.get('/api/v1/test/app-error', async () => {
          throw new AppError('conflict', 'Thing is in the wrong state');
        });
      },
    });
  });

  it('wraps a success in { isSuccess, statusCode, data, errors, timestamp }', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/credits/balance',
      headers: asUser('u_ok'),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      isSuccess: true,
      statusCode: 200,
      data: { userId: 'u_ok', balance: 0, available: 0, held: 0, updatedAt: null, expiringSoon: [] },
      errors: [],
      timestamp: expect.stringMatching(ISO),
    });
  });

  it('answers an unknown route with 404 not_found', async () => {
    const msg = expectError(await t.app.inject({ method: 'GET', url: '/api/v1/nope' }), 404, 'not_found');
    expect(msg).toContain('/api/v1/nope');
    expectError(await t.app.inject({ method: 'POST', url: '/webhooks/nope', payload: {} }), 404, 'not_found');
    expectError(await t.app.inject({ method: 'GET', url: '/nowhere?x=1' }), 404, 'not_found');
  });

  it('renders a thrown AppError with its code and message', async () => {
    const msg = expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/test/app-error' }),
      409,
      'conflict',
    );
    expect(msg).toBe('Thing is in the wrong state');
  });

  it('answers a schema failure with 400 validation_failed naming the field', async () => {
    const msg = expectError(await debit(t, { amount: 0 }), 400, 'validation_failed');
    expect(msg).toContain('body.amount');

    const missing = expectError(
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/api-keys',
        headers: asAdmin(),
        payload: { name: 'no scopes' },
      }),
      400,
      'validation_failed',
    );
    expect(missing).toContain('body.scopes');
  });

  it('names a missing required header', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/user_env/debits',
      headers: asAdmin(),
      payload: { amount: 1 },
    });
    expect(expectError(res, 400, 'validation_failed')).toContain('idempotency-key');
  });

  it('types JSON bodies strictly: "10" where an integer is expected is a 400', async () => {
    const msg = expectError(await debit(t, { amount: '10' }), 400, 'validation_failed');
    expect(msg).toContain('body.amount');
    expectError(await debit(t, { amount: 1.5 }), 400, 'validation_failed');
    expectError(await debit(t, { amount: true }), 400, 'validation_failed');
    // Nothing was written by the refused requests.
    const { rows } = await t.pg.query(
      "select count(*)::int as n from ledger_entries where user_id = 'user_env'",
    );
    expect(rows[0].n).toBe(0);
  });

  it('coerces query strings', async () => {
    const ok = await t.app.inject({ method: 'GET', url: '/api/v1/api-keys?limit=2', headers: asAdmin() });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().isSuccess).toBe(true);
    const bad = await t.app.inject({ method: 'GET', url: '/api/v1/api-keys?limit=abc', headers: asAdmin() });
    expect(expectError(bad, 400, 'validation_failed')).toContain('querystring.limit');
    const unknown = await t.app.inject({
      method: 'GET',
      url: '/api/v1/api-keys?bogus=1',
      headers: asAdmin(),
    });
    expectError(unknown, 400, 'validation_failed');
  });

  it('rejects unknown body fields with 400', async () => {
    const msg = expectError(await debit(t, { amount: 1, bogus: 'x' }), 400, 'validation_failed');
    expect(msg).toContain('bogus');
  });

  it('answers malformed JSON with 400 validation_failed', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: { ...asAdmin(), 'content-type': 'application/json' },
      payload: '{"name": "x", "scopes": [',
    });
    expectError(res, 400, 'validation_failed');
    const empty = await t.app.inject({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: { ...asAdmin(), 'content-type': 'application/json' },
      payload: '',
    });
    expectError(empty, 400, 'validation_failed');
  });

  it('answers a non-JSON content type with 415 unsupported_media_type', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/api-keys',
        headers: { ...asAdmin(), 'content-type': type },
        payload: 'name=x&scopes=ledger:read',
      });
      expectError(res, 415, 'unsupported_media_type');
    }
  });

  it('answers a body over 1 MiB with 413 payload_too_large', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 10), scopes: ['ledger:read'] });
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: { ...asAdmin(), 'content-type': 'application/json' },
      payload: big,
    });
    expectError(res, 413, 'payload_too_large');
    // Just under the limit is parsed (and then refused by the schema, not by the size).
    const under = JSON.stringify({ name: 'x'.repeat(1024 * 1024 - 100), scopes: ['ledger:read'] });
    const ok = await t.app.inject({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: { ...asAdmin(), 'content-type': 'application/json' },
      payload: under,
    });
    expectError(ok, 400, 'validation_failed');
  });

  it('answers 401 unauthorized and 403 forbidden in the envelope', async () => {
    expectError(await t.app.inject({ method: 'GET', url: '/api/v1/api-keys' }), 401, 'unauthorized');
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/api-keys', headers: asUser('plain') }),
      403,
      'forbidden',
    );
  });

  it('answers anything unexpected with 500 internal_error and no internals', async () => {
    for (const url of ['/api/v1/test/throws', '/api/v1/test/bad-sql']) {
      const res = await t.app.inject({ method: 'GET', url });
      const msg = expectError(res, 500, 'internal_error');
      expect(msg).toBe('Internal server error');
      expect(res.body).not.toMatch(/secret_column|internal_table|select|relation|stack|\.ts:\d+|at /i);
      expect(Object.keys(res.json()).sort()).toEqual(
        ['code', 'data', 'errors', 'isSuccess', 'statusCode', 'timestamp'].sort(),
      );
    }
  });

  it('refuses an int8 beyond the safe integer range (500) rather than rounding it', async () => {
    // Migration 006 keeps balances within 2^53-1; without that constraint the int8 parser is the last guard.
    await t.pg.query('alter table accounts drop constraint accounts_balance_safe');
    await t.pg.query("insert into accounts (user_id, balance) values ('huge', 9007199254740993)");
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/huge/balance',
      headers: asAdmin(),
    });
    const msg = expectError(res, 500, 'internal_error');
    expect(msg).toBe('Internal server error');
    expect(res.body).not.toContain('9007199254740993');
    expect(res.body).not.toContain('9007199254740992');
    // The pool is still usable afterwards.
    const after = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(after.statusCode).toBe(200);
  });
});

describe('rate limits', () => {
  it('answers 429 rate_limited with Retry-After once a user is over RATE_LIMIT_PER_MINUTE', async () => {
    const t = await buildTestApp({ RATE_LIMIT_PER_MINUTE: '3' });
    const call = (sub: string) =>
      t.app.inject({ method: 'GET', url: '/api/v1/credits/balance', headers: asUser(sub) });
    for (let i = 0; i < 3; i++) expect((await call('busy')).statusCode).toBe(200);
    const limited = await call('busy');
    const msg = expectError(limited, 429, 'rate_limited');
    expect(msg).toMatch(/retry/i);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Per user: another user is not affected.
    expect((await call('quiet')).statusCode).toBe(200);
    // Operations routes are outside /api/v1 and never limited.
    for (let i = 0; i < 5; i++) {
      expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    }
  });

  it('limits callers without credentials per IP, and never limits webhooks', async () => {
    const t = await buildTestApp({ RATE_LIMIT_PER_MINUTE: '3' });
    const anonymous = () => t.app.inject({ method: 'GET', url: '/api/v1/credit-packages' });
    for (let i = 0; i < 3; i++) expect((await anonymous()).statusCode).toBe(200);
    expectError(await anonymous(), 429, 'rate_limited');
    for (let i = 0; i < 6; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/webhooks/revenuecat', payload: { event: {} } });
      expect(res.statusCode).not.toBe(429);
    }
  });

  it('does not limit API keys when RATE_LIMIT_API_KEY_PER_MINUTE=0', async () => {
    const t = await buildTestApp({ RATE_LIMIT_PER_MINUTE: '3', RATE_LIMIT_API_KEY_PER_MINUTE: '0' });
    const key = await createApiKey(t.app, ['balances:read']);
    for (let i = 0; i < 10; i++) {
      const res = await t.app.inject({
        method: 'GET',
        url: '/api/v1/accounts/u1/balance',
        headers: { 'x-api-key': key },
      });
      expect(res.statusCode).toBe(200);
    }
  });

  it('limits an API key when RATE_LIMIT_API_KEY_PER_MINUTE is set', async () => {
    const t = await buildTestApp({ RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_API_KEY_PER_MINUTE: '2' });
    const key = await createApiKey(t.app, ['balances:read']);
    const call = () =>
      t.app.inject({ method: 'GET', url: '/api/v1/accounts/u1/balance', headers: { 'x-api-key': key } });
    expect((await call()).statusCode).toBe(200);
    expect((await call()).statusCode).toBe(200);
    const limited = await call();
    expectError(limited, 429, 'rate_limited');
    expect(limited.headers['retry-after']).toBeDefined();
    // Users are not limited with RATE_LIMIT_PER_MINUTE=0.
    for (let i = 0; i < 5; i++) {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/credits/balance', headers: asUser('u') });
      expect(res.statusCode).toBe(200);
    }
  });
});

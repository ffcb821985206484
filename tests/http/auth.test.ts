import { createHmac, generateKeyPairSync } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEV_JWT_SECRET } from '../../src/config.ts';
import { asAdmin, asUser, bearer, buildTestApp, type TestApp, tokenFor } from '../helpers/app.ts';
import { expectError } from '../helpers/envelope.ts';

const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A JWT built by hand, so a test can produce what a well-behaved signer refuses to (alg none, confusions). */
function rawJwt(header: Record<string, unknown>, payload: Record<string, unknown>, hmacKey?: string): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const signature = hmacKey ? createHmac('sha256', hmacKey).update(input).digest('base64url') : '';
  return `${input}.${signature}`;
}

const hs256 = (payload: Record<string, unknown>, key = DEV_JWT_SECRET) =>
  createSigner({ key, algorithm: 'HS256' })(payload);

const balance = (t: TestApp, headers: Record<string, string>, userId?: string) =>
  t.app.inject({
    method: 'GET',
    url: userId ? `/api/v1/accounts/${userId}/balance` : '/api/v1/credits/balance',
    headers,
  });

describe('JWT with the HS256 secret', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });

  it('accepts a valid token, acting as its sub', async () => {
    const res = await balance(t, bearer(hs256({ sub: 'alice', exp: now() + 60 })));
    expect(res.statusCode).toBe(200);
    expect(res.json().data.userId).toBe('alice');
  });

  it('answers 401 without credentials or with a malformed Authorization header', async () => {
    expectError(await balance(t, {}), 401, 'unauthorized');
    expectError(await balance(t, { authorization: 'Basic dXNlcjpwYXNz' }), 401, 'unauthorized');
    expectError(await balance(t, { authorization: 'Bearer' }), 401, 'unauthorized');
    expectError(await balance(t, bearer('not.a.jwt')), 401, 'unauthorized');
  });

  it('rejects alg none', async () => {
    const none = rawJwt({ alg: 'none', typ: 'JWT' }, { sub: 'alice', exp: now() + 60, roles: ['admin'] });
    expectError(await balance(t, bearer(none)), 401, 'unauthorized');
    // Same, with a signature still attached.
    const noneSigned = rawJwt({ alg: 'none', typ: 'JWT' }, { sub: 'alice', exp: now() + 60 }, DEV_JWT_SECRET);
    expectError(await balance(t, bearer(noneSigned)), 401, 'unauthorized');
  });

  it('rejects an expired token', async () => {
    const res = await balance(t, bearer(hs256({ sub: 'alice', exp: now() - 60 })));
    expectError(res, 401, 'unauthorized');
    expect(res.json().errors.join(' ')).toMatch(/expired/i);
  });

  it('rejects a token signed with another key', async () => {
    const res = await balance(
      t,
      bearer(hs256({ sub: 'alice', exp: now() + 60 }, 'another-secret-of-enough-length')),
    );
    expectError(res, 401, 'unauthorized');
  });

  it('rejects a tampered payload', async () => {
    const [h, , s] = tokenFor('alice').split('.');
    const forged = `${h}.${b64({ sub: 'alice', roles: ['admin'], exp: now() + 60 })}.${s}`;
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/api-keys', headers: bearer(forged) }),
      401,
      'unauthorized',
    );
  });

  it('rejects a token without exp', async () => {
    const token = hs256({ sub: 'alice' });
    expect(JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString())).not.toHaveProperty(
      'exp',
    );
    expectError(await balance(t, bearer(token)), 401, 'unauthorized');
  });

  it('rejects a token without sub', async () => {
    expectError(await balance(t, bearer(hs256({ exp: now() + 60 }))), 401, 'unauthorized');
    expectError(await balance(t, bearer(hs256({ sub: '', exp: now() + 60 }))), 401, 'unauthorized');
  });
});

describe('JWT issuer and audience', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ JWT_ISSUER: 'https://issuer.test', JWT_AUDIENCE: 'credits-api' });
  });
  const claims = { sub: 'alice', iss: 'https://issuer.test', aud: 'credits-api' };

  it('accepts the configured issuer and audience', async () => {
    expect((await balance(t, bearer(hs256({ ...claims, exp: now() + 60 })))).statusCode).toBe(200);
    // aud may be an array containing ours.
    const multi = hs256({ ...claims, aud: ['other-api', 'credits-api'], exp: now() + 60 });
    expect((await balance(t, bearer(multi))).statusCode).toBe(200);
  });

  it('rejects a wrong audience', async () => {
    expectError(
      await balance(t, bearer(hs256({ ...claims, aud: 'other-api', exp: now() + 60 }))),
      401,
      'unauthorized',
    );
  });

  it('rejects a wrong issuer', async () => {
    const token = hs256({ ...claims, iss: 'https://evil.test', exp: now() + 60 });
    expectError(await balance(t, bearer(token)), 401, 'unauthorized');
  });

  it('rejects a token with no audience or no issuer when they are configured', async () => {
    expectError(
      await balance(t, bearer(hs256({ sub: 'alice', iss: claims.iss, exp: now() + 60 }))),
      401,
      'unauthorized',
    );
    expectError(
      await balance(t, bearer(hs256({ sub: 'alice', aud: claims.aud, exp: now() + 60 }))),
      401,
      'unauthorized',
    );
    expectError(await balance(t, asUser('alice')), 401, 'unauthorized');
  });
});

describe('JWT with a public key (RS256, ES256)', () => {
  const rsa = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });

  it('accepts RS256 tokens signed with the private key and nothing else', async () => {
    const t = await buildTestApp({ JWT_PUBLIC_KEY: rsa.publicKey });
    const rs256 = createSigner({ key: rsa.privateKey, algorithm: 'RS256', expiresIn: 60_000 });
    const ok = await balance(t, bearer(rs256({ sub: 'bob' })));
    expect(ok.statusCode).toBe(200);
    expect(ok.json().data.userId).toBe('bob');

    // The development secret is not accepted once a public key is configured.
    expectError(await balance(t, asUser('bob')), 401, 'unauthorized');
    // Algorithm confusion: HS256 "signed" with the public key's PEM as the HMAC secret.
    const confused = rawJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'bob', exp: now() + 60 }, rsa.publicKey);
    expectError(await balance(t, bearer(confused)), 401, 'unauthorized');
    // Another RSA key.
    const other = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const wrong = createSigner({ key: other.privateKey, algorithm: 'RS256', expiresIn: 60_000 });
    expectError(await balance(t, bearer(wrong({ sub: 'bob' }))), 401, 'unauthorized');
    // Expired and exp-less RS256 tokens.
    const plain = createSigner({ key: rsa.privateKey, algorithm: 'RS256' });
    expectError(await balance(t, bearer(plain({ sub: 'bob', exp: now() - 5 }))), 401, 'unauthorized');
    expectError(await balance(t, bearer(plain({ sub: 'bob' }))), 401, 'unauthorized');
    const none = rawJwt({ alg: 'none' }, { sub: 'bob', exp: now() + 60 });
    expectError(await balance(t, bearer(none)), 401, 'unauthorized');
  });

  it('accepts a PEM given on one line with \\n escapes (as env files hold it)', async () => {
    const t = await buildTestApp({ JWT_PUBLIC_KEY: rsa.publicKey.trim().replace(/\n/g, '\\n') });
    const rs256 = createSigner({ key: rsa.privateKey, algorithm: 'RS256', expiresIn: 60_000 });
    expect((await balance(t, bearer(rs256({ sub: 'bob' })))).statusCode).toBe(200);
  });

  it('accepts ES256 tokens', async () => {
    const ec = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const t = await buildTestApp({ JWT_PUBLIC_KEY: ec.publicKey });
    const es256 = createSigner({ key: ec.privateKey, algorithm: 'ES256', expiresIn: 60_000 });
    expect((await balance(t, bearer(es256({ sub: 'carol' })))).statusCode).toBe(200);
  });
});

describe('roles', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  const ops = () => bearer(tokenFor('ops_1', ['ops']));

  it('gives a user without a role 403 on admin routes', async () => {
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/api-keys', headers: asUser('u1') }),
      403,
      'forbidden',
    );
    const create = await t.app.inject({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: asUser('u1'),
      payload: { name: 'mine', scopes: ['credits:debit'] },
    });
    expectError(create, 403, 'forbidden');
    const { rows } = await t.pg.query('select count(*)::int as n from api_keys');
    expect(rows[0].n).toBe(0);
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/accounts', headers: asUser('u1') }),
      403,
      'forbidden',
    );
    const debit = await t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/u1/debits',
      headers: { ...asUser('u1'), 'idempotency-key': 'k' },
      payload: { amount: 1 },
    });
    expectError(debit, 403, 'forbidden');
  });

  it("lets a user read their own balance and not another user's", async () => {
    expect((await balance(t, asUser('u1'), 'u1')).statusCode).toBe(200);
    expectError(await balance(t, asUser('u1'), 'u2'), 403, 'forbidden');
    const ledger = await t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/u2/ledger',
      headers: asUser('u1'),
    });
    expectError(ledger, 403, 'forbidden');
  });

  it('does not take roles from a claim that is not a string array', async () => {
    const token = hs256({ sub: 'u1', roles: 'admin', exp: now() + 60 });
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/api-keys', headers: bearer(token) }),
      403,
      'forbidden',
    );
  });

  it('lets ops read any account but not manage keys or debit', async () => {
    const res = await balance(t, ops(), 'u2');
    expect(res.statusCode).toBe(200);
    expect(res.json().data.userId).toBe('u2');
    expect(
      (await t.app.inject({ method: 'GET', url: '/api/v1/accounts/u2/ledger', headers: ops() })).statusCode,
    ).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/accounts', headers: ops() })).statusCode).toBe(
      200,
    );
    expectError(
      await t.app.inject({ method: 'GET', url: '/api/v1/api-keys', headers: ops() }),
      403,
      'forbidden',
    );
    const debit = await t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/u2/debits',
      headers: { ...ops(), 'idempotency-key': 'k' },
      payload: { amount: 1 },
    });
    expectError(debit, 403, 'forbidden');
  });

  it('lets admin do everything', async () => {
    expect((await balance(t, asAdmin(), 'u2')).statusCode).toBe(200);
    expect(
      (await t.app.inject({ method: 'GET', url: '/api/v1/api-keys', headers: asAdmin() })).statusCode,
    ).toBe(200);
  });
});

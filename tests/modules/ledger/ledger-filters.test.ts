import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
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
import { debit } from './ledger-helpers.ts';

let t: TestApp;
let app: App;
let debitKey: string;
const TYPES = ['grant', 'debit', 'reversal', 'expiry', 'debit_reversal'] as const;

const get = (url: string, headers: Record<string, string> = asAdmin()) =>
  app.inject({ method: 'GET', url, headers });

/** Every page of a list (limit per page), following nextCursor. */
async function all(url: string, limit = 2, headers: Record<string, string> = asAdmin()) {
  const items: { id: string; type: string; userId: string; createdAt: string }[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 200; page++) {
    const sep = url.includes('?') ? '&' : '?';
    const res = await get(`${url}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, headers);
    expect(res.statusCode, res.body).toBe(200);
    items.push(...res.json().data.items);
    cursor = res.json().data.nextCursor;
    if (!cursor) return items;
  }
  throw new Error('pagination did not end');
}

/** Exact microsecond texts of a user's entries, oldest first, with the times just before and after. */
async function times(userId: string) {
  const { rows } = await t.pg.query<{ id: string; type: string; at: string; before: string; after: string }>(
    `select id::text, type,
       to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at,
       to_char((created_at - interval '1 microsecond') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as before,
       to_char((created_at + interval '1 microsecond') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as after
     from ledger_entries where user_id = $1 order by created_at, id`,
    [userId],
  );
  return rows;
}

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  debitKey = await createApiKey(app, ['credits:debit']);
  // One account with every type of entry: grants, debits, a debit reversal, a clawback, an expiry.
  await grant(app, 'f_user', 10);
  // already past its expiry: the next operation writes its expiry entry
  await grant(app, 'f_user', 5, { expiresAt: new Date(Date.now() - 1000) });
  const d1 = await debit(app, debitKey, 'f_user', { amount: 3 });
  await debit(app, debitKey, 'f_user', { amount: 2 });
  await app.inject({
    method: 'POST',
    url: `/api/v1/accounts/f_user/debits/${d1.json().data.entry.id}/reversals`,
    headers: { 'x-api-key': debitKey, 'idempotency-key': 'rev-1' },
    payload: { amount: 1 },
  });
  await app.services.ledger.clawback({
    userId: 'f_user',
    amount: 2,
    source: 'dev',
    purchaseId: null,
    idempotencyKey: 'claw-1',
    reason: 'refund',
  });
  await grant(app, 'other_user', 7);
});

describe('ledger filters', () => {
  it('each type alone gives exactly the entries of that type, on both lists and across accounts', async () => {
    const everything = await all('/api/v1/accounts/f_user/ledger');
    expect(new Set(everything.map((e) => e.type))).toEqual(new Set(TYPES));
    for (const type of TYPES) {
      const want = everything.filter((e) => e.type === type).map((e) => e.id);
      expect(want.length).toBeGreaterThan(0);
      const got = await all(`/api/v1/accounts/f_user/ledger?type=${type}`, 1);
      expect(got.map((e) => e.id)).toEqual(want);
      const mine = await all(`/api/v1/credits/ledger?type=${type}`, 1, asUser('f_user'));
      expect(mine.map((e) => e.id)).toEqual(want);
      const across = await all(`/api/v1/ledger?type=${type}&userId=f_user`, 1);
      expect(across.map((e) => e.id)).toEqual(want);
    }
    const two = await all('/api/v1/accounts/f_user/ledger?type=debit,grant', 1);
    expect(two.map((e) => e.id)).toEqual(
      everything.filter((e) => e.type === 'debit' || e.type === 'grant').map((e) => e.id),
    );
  });

  it('pages newest first, the same rows as one big page, and /ledger lists every account', async () => {
    const big = (await get('/api/v1/accounts/f_user/ledger?limit=100')).json().data.items;
    const paged = await all('/api/v1/accounts/f_user/ledger', 1);
    expect(paged.map((e) => e.id)).toEqual(big.map((e: { id: string }) => e.id));
    const stamps = paged.map((e) => Date.parse(e.createdAt));
    expect([...stamps].sort((a, b) => b - a)).toEqual(stamps);
    const every = await all('/api/v1/ledger', 3);
    expect(new Set(every.map((e) => e.userId))).toEqual(new Set(['f_user', 'other_user']));
    expect(every).toHaveLength(paged.length + 1);
  });

  it('from is inclusive and to exclusive, to the microsecond', async () => {
    const rows = await times('f_user');
    const mid = rows[3];
    if (!mid) throw new Error('no entries');
    const ids = (items: { id: string }[]) => items.map((e) => e.id);
    const url = (q: string) => `/api/v1/accounts/f_user/ledger?${q}`;
    // from = its exact time includes it; one microsecond later leaves it out.
    const from = await all(url(`from=${mid.at}`), 50);
    expect(ids(from)).toContain(mid.id);
    expect(ids(from)).toEqual(
      rows
        .filter((r) => r.at >= mid.at)
        .map((r) => r.id)
        .reverse(),
    );
    expect(ids(await all(url(`from=${mid.after}`), 50))).not.toContain(mid.id);
    // to = its exact time leaves it out; one microsecond later includes it.
    expect(ids(await all(url(`to=${mid.at}`), 50))).not.toContain(mid.id);
    expect(ids(await all(url(`to=${mid.after}`), 50))).toContain(mid.id);
    // exactly one entry: [at, at + 1µs)
    const one = await all(url(`from=${mid.at}&to=${mid.after}`), 50);
    expect(ids(one)).toEqual(
      rows
        .filter((r) => r.at === mid.at)
        .map((r) => r.id)
        .reverse(),
    );
    // the same through the all-accounts list, with a type filter too
    const typed = await all(`/api/v1/ledger?from=${mid.at}&to=${mid.after}&type=${mid.type}`, 50);
    expect(ids(typed)).toContain(mid.id);
    // an offset form names the same instant
    const offset = mid.at.replace('Z', '+00:00');
    expect(ids(await all(url(`from=${encodeURIComponent(offset)}`), 50))).toEqual(ids(from));
  });

  it('bad input is 400 validation_failed naming the field, in English and Russian', async () => {
    const cases: [string, string][] = [
      ['type=debit,bogus', 'querystring.type'],
      ['type=', 'querystring.type'],
      ['from=yesterday', 'querystring.from'],
      ['to=2026-02-30T00:00:00Z', 'querystring.to'],
      ['from=0000-01-01T00:00:00Z', 'querystring.from'],
      ['from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z', 'querystring.from'],
      ['from=2026-05-01T00:00:00.000001Z&to=2026-05-01T00:00:00.000001Z', 'querystring.from'],
    ];
    for (const [q, field] of cases) {
      for (const url of ['/api/v1/accounts/f_user/ledger', '/api/v1/ledger']) {
        const res = await get(`${url}?${q}`);
        expect(res.statusCode, `${url}?${q}`).toBe(400);
        expect(res.json().code).toBe('validation_failed');
        expect(res.json().errors.join(' ')).toContain(field);
      }
      const ru = await app.inject({
        method: 'GET',
        url: `/api/v1/credits/ledger?${q}`,
        headers: { ...asUser('f_user'), 'accept-language': 'ru' },
      });
      expect(ru.statusCode).toBe(400);
      expect(ru.headers['content-language']).toBe('ru');
      expect(ru.json().errors.join(' ')).toContain(field);
    }
    const range = await app.inject({
      method: 'GET',
      url: '/api/v1/ledger?from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z',
      headers: { ...asAdmin(), 'accept-language': 'ru' },
    });
    expect(range.json().errors[0]).toMatch(/раньше/);
  });

  it('GET /ledger: admin, ops and ledger:read; users and other scopes refused', async () => {
    const ledgerRead = await createApiKey(app, ['ledger:read']);
    const balancesRead = await createApiKey(app, ['balances:read']);
    expect((await get('/api/v1/ledger', asAdmin())).statusCode).toBe(200);
    expect((await get('/api/v1/ledger', bearer(tokenFor('ops_1', ['ops'])))).statusCode).toBe(200);
    expect((await get('/api/v1/ledger', { 'x-api-key': ledgerRead })).statusCode).toBe(200);
    expect((await get('/api/v1/ledger', asUser('f_user'))).statusCode).toBe(403);
    expect((await get('/api/v1/ledger', { 'x-api-key': balancesRead })).statusCode).toBe(403);
    expect((await get('/api/v1/ledger', { 'x-api-key': debitKey })).statusCode).toBe(403);
    expect((await get('/api/v1/ledger', {})).statusCode).toBe(401);
  });

  it('an id-only cursor from before the time-ordered lists still pages on', async () => {
    const everything = await all('/api/v1/accounts/f_user/ledger', 50);
    const third = everything[2];
    if (!third) throw new Error('no entries');
    const cursor = Buffer.from(JSON.stringify([Number(third.id)])).toString('base64url');
    const res = await get(`/api/v1/accounts/f_user/ledger?limit=100&cursor=${cursor}`);
    expect(res.statusCode).toBe(200);
    expect(res.json().data.items.map((e: { id: string }) => e.id)).toEqual(
      everything.slice(3).map((e) => e.id),
    );
  });
});

describe('account search', () => {
  it('?prefix= lists the accounts whose user id begins with it, paged; LIKE characters are literal', async () => {
    for (const id of ['acme_1', 'acme_2', 'acme_3', 'acmeX', 'acm', 'zeta', 'a%b', 'a_b', 'axb'])
      await grant(app, id, 1);
    const ids = async (prefix: string) =>
      (await all(`/api/v1/accounts?prefix=${encodeURIComponent(prefix)}`, 2)).map((a) => a.userId);
    expect(await ids('acme')).toEqual(['acmeX', 'acme_1', 'acme_2', 'acme_3']);
    expect(await ids('acme_')).toEqual(['acme_1', 'acme_2', 'acme_3']);
    expect(await ids('a%')).toEqual(['a%b']);
    expect(await ids('a_')).toEqual(['a_b']);
    expect(await ids('nobody')).toEqual([]);
    expect((await get('/api/v1/accounts?prefix=')).statusCode).toBe(400);
  });
});

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
  balanceOf,
} from '../../helpers/app.ts';
import { debit } from './ledger-helpers.ts';
import { expectError } from '../../helpers/envelope.ts';

let t: TestApp;
let app: App;
let debitKey: string;

const pause = () => new Promise((r) => setTimeout(r, 5));

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  debitKey = await createApiKey(app, ['credits:debit']);
});

const get = (url: string, headers: Record<string, string>) => app.inject({ method: 'GET', url, headers });

/** Every page of a list, following nextCursor (bounded). */
async function allPages(
  url: string,
  headers: Record<string, string>,
  limit: number,
  between?: () => Promise<void>,
) {
  const items: { id?: string; userId: string }[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const sep = url.includes('?') ? '&' : '?';
    const res = await get(`${url}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, headers);
    expect(res.statusCode).toBe(200);
    const { data } = res.json();
    expect(data.items.length).toBeLessThanOrEqual(limit);
    items.push(...data.items);
    cursor = data.nextCursor;
    if (!cursor) return items;
    await between?.();
  }
  throw new Error('pagination did not end');
}

describe('the caller’s own credits', () => {
  it('GET /credits/balance and /credits/ledger answer for the JWT’s user', async () => {
    await grant(app, 'me_user', 9);
    await debit(app, debitKey, 'me_user', { amount: 2 });
    await grant(app, 'someone_else', 100);

    const balance = await get('/api/v1/credits/balance', asUser('me_user'));
    expect(balance.statusCode).toBe(200);
    expect(balance.json()).toMatchObject({
      isSuccess: true,
      statusCode: 200,
      errors: [],
      data: { userId: 'me_user', balance: 7, expiringSoon: [] },
    });
    expect(typeof balance.json().data.updatedAt).toBe('string');

    const ledger = await get('/api/v1/credits/ledger', asUser('me_user'));
    expect(ledger.statusCode).toBe(200);
    const items = ledger.json().data.items;
    expect(items.map((e: { type: string; amount: number }) => [e.type, e.amount])).toEqual([
      ['debit', -2],
      ['grant', 9],
    ]);
    expect(items.every((e: { userId: string }) => e.userId === 'me_user')).toBe(true);
    expect(ledger.json().data.nextCursor).toBeNull();
  });

  it('a user with no account has balance 0 and an empty ledger, not 404', async () => {
    const balance = await get('/api/v1/credits/balance', asUser('brand_new'));
    expect(balance.statusCode).toBe(200);
    expect(balance.json().data).toEqual({
      userId: 'brand_new',
      balance: 0,
      available: 0,
      held: 0,
      updatedAt: null,
      expiringSoon: [],
    });
    const byAdmin = await balanceOf(app, 'brand_new_2');
    expect(byAdmin.balance).toBe(0);
    const ledger = await get('/api/v1/credits/ledger', asUser('brand_new'));
    expect(ledger.statusCode).toBe(200);
    expect(ledger.json().data).toEqual({ items: [], nextCursor: null });
  });

  it('needs a user token', async () => {
    const readKey = await createApiKey(app, ['balances:read', 'ledger:read']);
    expect((await get('/api/v1/credits/balance', {})).statusCode).toBe(401);
    expect((await get('/api/v1/credits/balance', { 'x-api-key': readKey })).statusCode).toBe(403);
    expect((await get('/api/v1/credits/ledger', bearer('not.a.jwt'))).statusCode).toBe(401);
  });
});

describe('ledger pagination', () => {
  it('pages newest first with no entry lost or repeated, even while new entries arrive', async () => {
    await grant(app, 'pager', 100);
    for (let i = 0; i < 24; i++) await debit(app, debitKey, 'pager', { amount: 1 }, `page-${i}`);
    const { rows } = await t.pg.query<{ id: number }>(
      `select id::int from ledger_entries where user_id = 'pager' order by id desc`,
    );
    expect(rows).toHaveLength(25);

    // Debits written between pages are newer than the cursor: they must not shift what the pages hold.
    let n = 0;
    const items = await allPages('/api/v1/credits/ledger', asUser('pager'), 7, async () => {
      await debit(app, debitKey, 'pager', { amount: 1 }, `between-${n++}`);
    });
    expect(items.map((e) => Number(e.id))).toEqual(rows.map((r) => r.id));

    const viaAccounts = await allPages('/api/v1/accounts/pager/ledger', asAdmin(), 10);
    expect(viaAccounts).toHaveLength(25 + n);
    const ids = viaAccounts.map((e) => Number(e.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
  });

  it('rejects a bad limit or cursor with 400', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=abc', 'cursor=!!!', 'cursor=WyJ4Il0', 'unknown=1']) {
      const res = await get(`/api/v1/credits/ledger?${q}`, asUser('pager'));
      expect(res.statusCode, q).toBe(400);
      expect(res.json().code).toBe('validation_failed');
    }
  });
});

describe('accounts and access rules', () => {
  it('GET /accounts pages every account in user id order, for admin, ops and balances:read', async () => {
    const ids = ['acc_a', 'acc_b', 'acc_c', 'acc_d', 'acc_e'];
    for (const [i, id] of ids.entries()) await grant(app, id, i + 1);
    const { rows } = await t.pg.query<{ user_id: string }>('select user_id from accounts order by user_id');

    const balancesKey = await createApiKey(app, ['balances:read']);
    for (const headers of [asAdmin(), bearer(tokenFor('ops_1', ['ops'])), { 'x-api-key': balancesKey }]) {
      const items = (await allPages('/api/v1/accounts', headers, 2)) as {
        userId: string;
        balance?: number;
      }[];
      expect(items.map((a) => a.userId)).toEqual(rows.map((r) => r.user_id));
      expect(items.find((a) => a.userId === 'acc_c')?.balance).toBe(3);
    }

    const ledgerKey = await createApiKey(app, ['ledger:read']);
    expect((await get('/api/v1/accounts', { 'x-api-key': ledgerKey })).statusCode).toBe(403);
    expect((await get('/api/v1/accounts', asUser('acc_a'))).statusCode).toBe(403);
    expect((await get('/api/v1/accounts', {})).statusCode).toBe(401);
  });

  it('a user reads only their own balance and ledger', async () => {
    await grant(app, 'alice', 5);
    await grant(app, 'bob', 5);
    expect((await get('/api/v1/accounts/alice/balance', asUser('alice'))).statusCode).toBe(200);
    expect((await get('/api/v1/accounts/alice/ledger', asUser('alice'))).statusCode).toBe(200);
    const other = await get('/api/v1/accounts/bob/ledger', asUser('alice'));
    expectError(other, 403, 'forbidden');
    expect((await get('/api/v1/accounts/bob/balance', asUser('alice'))).statusCode).toBe(403);
  });

  it('ledger:read reads ledgers but not balances; balances:read the reverse; ops reads both', async () => {
    await grant(app, 'carol', 5);
    const ledgerKey = await createApiKey(app, ['ledger:read']);
    const balancesKey = await createApiKey(app, ['balances:read']);

    const ledger = await get('/api/v1/accounts/carol/ledger', { 'x-api-key': ledgerKey });
    expect(ledger.statusCode).toBe(200);
    expect(ledger.json().data.items).toHaveLength(1);
    expect((await get('/api/v1/accounts/carol/ledger', { 'x-api-key': balancesKey })).statusCode).toBe(403);

    const balance = await get('/api/v1/accounts/carol/balance', { authorization: `Bearer ${balancesKey}` });
    expect(balance.statusCode).toBe(200);
    expect(balance.json().data.balance).toBe(5);
    expect((await get('/api/v1/accounts/carol/balance', { 'x-api-key': ledgerKey })).statusCode).toBe(403);

    const ops = bearer(tokenFor('ops_2', ['ops']));
    expect((await get('/api/v1/accounts/carol/ledger', ops)).statusCode).toBe(200);
    expect((await get('/api/v1/accounts/carol/balance', ops)).statusCode).toBe(200);
    // ops reads, but does not spend.
    const opsDebit = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/carol/debits',
      headers: { ...ops, 'idempotency-key': 'ops-debit' },
      payload: { amount: 1 },
    });
    expect(opsDebit.statusCode).toBe(403);
  });

  it('a revoked API key stops working at once', async () => {
    await grant(app, 'dave', 5);
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: asAdmin(),
      payload: { name: 'to revoke', scopes: ['balances:read'] },
    });
    const { id, key } = res.json().data;
    expect((await get('/api/v1/accounts/dave/balance', { 'x-api-key': key })).statusCode).toBe(200);
    const revoke = await app.inject({ method: 'DELETE', url: `/api/v1/api-keys/${id}`, headers: asAdmin() });
    expect(revoke.statusCode).toBe(200);
    const after = await get('/api/v1/accounts/dave/balance', { 'x-api-key': key });
    expect(after.statusCode).toBe(401);
    expect(after.json().code).toBe('unauthorized');
  });
});

describe('point-in-time balance', () => {
  it('?at= answers the balance after the last entry at or before that time, 0 before the first', async () => {
    const before = new Date().toISOString();
    await pause();
    const g = await grant(app, 'timeline', 10);
    await pause();
    const d1 = (await debit(app, debitKey, 'timeline', { amount: 3 })).json().data.entry;
    await pause();
    const g2 = await grant(app, 'timeline', 5);
    await pause();
    const d2 = (await debit(app, debitKey, 'timeline', { amount: 12 })).json().data.entry;

    expect((await balanceOf(app, 'timeline', before)).balance).toBe(0);
    expect((await balanceOf(app, 'timeline', before)).updatedAt).toBeNull();
    // At each entry's own createdAt (as the API shows it, to the millisecond) the balance includes it.
    expect(await balanceOf(app, 'timeline', g.entry.createdAt)).toMatchObject({
      balance: 10,
      updatedAt: g.entry.createdAt,
    });
    expect((await balanceOf(app, 'timeline', d1.createdAt)).balance).toBe(7);
    expect((await balanceOf(app, 'timeline', g2.entry.createdAt)).balance).toBe(12);
    expect((await balanceOf(app, 'timeline', d2.createdAt)).balance).toBe(0);
    // Between two entries: the earlier one's balanceAfter.
    const justBeforeG2 = new Date(Date.parse(g2.entry.createdAt) - 1).toISOString();
    expect((await balanceOf(app, 'timeline', justBeforeG2)).balance).toBe(7);
    // Any ISO offset names the same instant.
    const d1Plus2h = new Date(Date.parse(d1.createdAt) + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    expect((await balanceOf(app, 'timeline', d1Plus2h)).balance).toBe(7);
    expect((await balanceOf(app, 'timeline', '2999-01-01T00:00:00Z')).balance).toBe(0);
    // A user with no entries: 0 at any time.
    expect((await balanceOf(app, 'nobody_at_all', '2999-01-01T00:00:00Z')).balance).toBe(0);
  });

  it('an invalid ?at= is 400', async () => {
    for (const at of ['yesterday', '2026-13-01T00:00:00Z', '2026-05-22', '2026-05-22T10:00:00', '']) {
      const res = await get(`/api/v1/accounts/timeline/balance?at=${encodeURIComponent(at)}`, asAdmin());
      expect(res.statusCode, at).toBe(400);
      expect(res.json().code).toBe('validation_failed');
    }
  });
});

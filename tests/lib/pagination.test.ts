import { beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, asUser, buildTestApp, type TestApp } from '../helpers/app.ts';

/** Every item of a list, following nextCursor one page of `limit` at a time. */
async function pageThrough(t: TestApp, url: string, headers: Record<string, string>, limit = 1) {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const sep = url.includes('?') ? '&' : '?';
    const res = await t.app.inject({
      method: 'GET',
      url: `${url}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      headers,
    });
    expect(res.statusCode, res.body).toBe(200);
    const data = res.json().data as { items: { id?: string; userId?: string }[]; nextCursor: string | null };
    seen.push(...data.items.map((i) => (i.id ?? i.userId) as string));
    cursor = data.nextCursor;
    if (!cursor) return seen;
  }
  throw new Error('the list did not end');
}

/** Six rows per list inside one millisecond: some at the very same instant, others microseconds apart. */
const STAMPS = ['.123999', '.123500', '.123500', '.123000', '.123000', '.123000'].map(
  (us) => `2025-03-01T00:00:00${us}Z`,
);

describe('keyset pagination: one cursor kind, exact to the microsecond, on every list', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
    for (const [i, at] of STAMPS.entries()) {
      await t.pg.query(
        `insert into credit_packages (id, name, credits, price, currency, created_at) values ($1, $1, 1, 1, 'usd', $2)`,
        [`pkg_ms_${i}`, at],
      );
      await t.pg.query(
        `insert into purchases (id, user_id, package_id, provider, status, credits, price, currency, created_at)
         values ($1, 'page_user', 'pkg_ms_0', 'dev', 'completed', 1, 1, 'usd', $2)`,
        [`pur_ms_${i}`, at],
      );
      await t.pg.query(
        `insert into api_keys (id, name, prefix, key_hash, scopes, created_at)
         values ($1, $1, 'ck_ms', $2, '{ledger:read}', $3)`,
        [`key_ms_${i}`, `hash-ms-${i}`, at],
      );
    }
  });

  it.each([
    ['packages', '/api/v1/credit-packages', () => asUser('page_user'), 'credit_packages'],
    ['purchases', '/api/v1/credit-packages/purchases', () => asUser('page_user'), 'purchases'],
    ['purchases (operator)', '/api/v1/accounts/page_user/purchases', () => asAdmin(), 'purchases'],
    ['API keys', '/api/v1/api-keys', () => asAdmin(), 'api_keys'],
  ])('%s: no row skipped or repeated, newest first then by id', async (_name, url, headers, table) => {
    // The order Postgres itself gives (packages and purchases keep milliseconds, API keys microseconds).
    const { rows } = await t.pg.query<{ id: string }>(
      `select id from ${table} where id like '%\\_ms\\_%' order by created_at desc, id desc`,
    );
    expect(rows).toHaveLength(6);
    for (const limit of [1, 2, 4]) {
      const seen = (await pageThrough(t, url, headers(), limit)).filter((id) => id.includes('_ms_'));
      expect(seen, `limit ${limit}`).toEqual(rows.map((r) => r.id));
    }
    // One cursor kind: the time in it is Postgres' exact text, to the microsecond, whatever the list.
    const first = await t.app.inject({ method: 'GET', url: `${url}?limit=1`, headers: headers() });
    const key = JSON.parse(Buffer.from(first.json().data.nextCursor, 'base64url').toString('utf8'));
    expect(key[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('ledger and accounts page without loss too', async () => {
    for (let i = 0; i < 5; i++) {
      await t.app.services.ledger.grant(
        {
          userId: `page_acct_${i}`,
          amount: 1,
          source: 'dev',
          purchaseId: null,
          idempotencyKey: `page-${i}`,
          reason: 'page',
          expiresAt: null,
        },
        t.app.db,
      );
      await t.app.services.ledger.grant(
        {
          userId: 'page_acct_0',
          amount: 1,
          source: 'dev',
          purchaseId: null,
          idempotencyKey: `page-0-${i}`,
          reason: 'page',
          expiresAt: null,
        },
        t.app.db,
      );
    }
    const accounts = await pageThrough(t, '/api/v1/accounts', asAdmin(), 2);
    expect(accounts.filter((u) => u.startsWith('page_acct_'))).toEqual(
      [0, 1, 2, 3, 4].map((i) => `page_acct_${i}`),
    );
    const entries = await pageThrough(t, '/api/v1/accounts/page_acct_0/ledger', asAdmin(), 2);
    expect(entries).toHaveLength(6);
    expect(new Set(entries).size).toBe(6);
  });
});

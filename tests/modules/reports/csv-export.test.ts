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
import { debit } from '../ledger/ledger-helpers.ts';

let t: TestApp;
let app: App;
let debitKey: string;

const HEADER =
  'id,createdAt,userId,type,amount,balanceAfter,source,purchaseId,holdId,reversesEntryId,reason,idempotencyKey,metadata';

/** RFC 4180 quoting: records end with a line break outside quotes (LF or CRLF), "" inside quotes is a quote. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(cell);
      cell = '';
    } else if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
      record.push(cell);
      records.push(record);
      record = [];
      cell = '';
      if (c === '\r') i++;
    } else cell += c;
  }
  if (cell !== '' || record.length > 0) {
    record.push(cell);
    records.push(record);
  }
  return records;
}

const csv = (url: string, headers: Record<string, string> = asAdmin()) =>
  app.inject({ method: 'GET', url, headers: { ...headers, accept: 'text/csv' } });

/** Debits of 1 for a user, written by one SQL statement (a big ledger quickly). */
async function manyDebits(userId: string, n: number) {
  await grant(app, userId, n);
  await t.pg.query(
    `select credits_debit($1, 1, 'bulk-' || i, null, null, '{}'::jsonb) from generate_series(1, $2) i`,
    [userId, n],
  );
}

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  debitKey = await createApiKey(app, ['credits:debit']);
});

describe('CSV exports', () => {
  it('quotes commas, quotes and newlines (RFC 4180) and prefixes cells that would start a formula', async () => {
    await grant(app, 'csv_q', 100);
    const reasons = [
      'plain',
      'a, b',
      'say "hi"',
      'two\nlines',
      'cr\r\nlf',
      '=SUM(A1:A9)',
      '+1',
      '-2',
      '@cmd',
      '\tTab',
      '\rCR',
    ];
    for (const reason of reasons) {
      expect(
        (await debit(app, debitKey, 'csv_q', { amount: 1, reason, metadata: { note: reason } })).statusCode,
      ).toBe(201);
    }
    const res = await csv('/api/v1/accounts/csv_q/ledger');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="[\w.-]+\.csv"$/);
    expect(res.body.startsWith(`${HEADER}\n`)).toBe(true);
    const [header, ...rows] = parseCsv(res.body);
    expect(header?.join(',')).toBe(HEADER);
    expect(rows).toHaveLength(1 + reasons.length);
    // oldest first: the grant, then the debits in order
    expect(rows.map((r) => r[3])).toEqual(['grant', ...reasons.map(() => 'debit')]);
    const formula = (s: string) => /^[=+\-@\t\r]/.test(s);
    for (const [i, reason] of reasons.entries()) {
      const row = rows[i + 1] as string[];
      expect(row[10]).toBe(formula(reason) ? `'${reason}` : reason);
      expect(JSON.parse(row[12] as string)).toEqual({ note: reason });
      // numbers are never prefixed, negative or not
      expect(row[4]).toBe('-1');
    }
    expect(rows[0]?.[4]).toBe('100');
    // createdAt to the microsecond, userId, balanceAfter
    expect(rows[1]?.[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(rows[1]?.[2]).toBe('csv_q');
    expect(rows[1]?.[5]).toBe('99');
    // the same rows as the JSON list, in reverse
    const json = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/csv_q/ledger?limit=100',
      headers: asAdmin(),
    });
    expect(rows.map((r) => r[0])).toEqual(
      json
        .json()
        .data.items.map((e: { id: string }) => e.id)
        .reverse(),
    );
  });

  it('exports every row of a ledger larger than a page (and than a cursor batch), with the filters', async () => {
    await manyDebits('csv_big', 2_500);
    const res = await csv('/api/v1/accounts/csv_big/ledger');
    expect(res.statusCode).toBe(200);
    const [, ...rows] = parseCsv(res.body);
    expect(rows).toHaveLength(2_501);
    expect(new Set(rows.map((r) => r[0])).size).toBe(2_501);
    // balanceAfter chains from the first row to the last
    let balance = 0;
    for (const r of rows) {
      balance += Number(r[4]);
      expect(Number(r[5])).toBe(balance);
    }
    const grants = parseCsv((await csv('/api/v1/accounts/csv_big/ledger?type=grant')).body);
    expect(grants).toHaveLength(2);
    const mid = rows[1200]?.[1] as string;
    const since = parseCsv((await csv(`/api/v1/ledger?userId=csv_big&from=${mid}`)).body);
    expect(since).toHaveLength(1 + rows.filter((r) => (r[1] as string) >= mid).length);
    const mine = parseCsv((await csv('/api/v1/credits/ledger?type=debit', asUser('csv_big'))).body);
    expect(mine).toHaveLength(2_501);
  });

  it('a debit during an export neither breaks it nor repeats a row', async () => {
    await manyDebits('csv_live', 3_000);
    await grant(app, 'csv_live', 50);
    const [exported] = await Promise.all([
      csv('/api/v1/accounts/csv_live/ledger'),
      (async () => {
        for (let i = 0; i < 20; i++) await debit(app, debitKey, 'csv_live', { amount: 1 });
      })(),
    ]);
    expect(exported.statusCode).toBe(200);
    const [, ...rows] = parseCsv(exported.body);
    const ids = rows.map((r) => r[0]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(rows.length).toBeGreaterThanOrEqual(3_002);
    expect(rows.length).toBeLessThanOrEqual(3_022);
    let balance = 0;
    for (const r of rows) {
      balance += Number(r[4]);
      expect(Number(r[5])).toBe(balance);
    }
    // one consistent snapshot: a prefix of the ledger as it is now
    const { rows: now } = await t.pg.query<{ id: string }>(
      `select id::text from ledger_entries where user_id = 'csv_live' order by created_at, id`,
    );
    expect(ids).toEqual(now.slice(0, ids.length).map((r) => r.id));
  });

  it('authorizes exactly as the JSON lists do', async () => {
    await grant(app, 'csv_owner', 5);
    expect((await csv('/api/v1/accounts/csv_owner/ledger', asUser('csv_owner'))).statusCode).toBe(200);
    const other = await csv('/api/v1/accounts/csv_owner/ledger', asUser('csv_intruder'));
    expect(other.statusCode).toBe(403);
    expect(other.json().code).toBe('forbidden');
    expect((await csv('/api/v1/ledger', asUser('csv_owner'))).statusCode).toBe(403);
    const ledgerRead = await createApiKey(app, ['ledger:read']);
    const balancesRead = await createApiKey(app, ['balances:read']);
    expect((await csv('/api/v1/ledger', { 'x-api-key': ledgerRead })).statusCode).toBe(200);
    expect((await csv('/api/v1/ledger', { 'x-api-key': balancesRead })).statusCode).toBe(403);
    expect((await csv('/api/v1/ledger', bearer(tokenFor('ops_9', ['ops'])))).statusCode).toBe(200);
    expect((await csv('/api/v1/reports/credits', { 'x-api-key': ledgerRead })).statusCode).toBe(403);
    expect((await csv('/api/v1/reports/credits', asUser('csv_owner'))).statusCode).toBe(403);
    // bad filters are the usual 400 in the envelope
    const bad = await csv('/api/v1/ledger?type=nope');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('validation_failed');
  });

  it('the credits report as CSV: the same rows as its JSON', async () => {
    const q = `interval=day&from=${new Date(Date.now() - 3 * 86_400_000).toISOString()}&to=${new Date(Date.now() + 86_400_000).toISOString()}`;
    const res = await csv(`/api/v1/reports/credits?${q}`, bearer(tokenFor('ops_9', ['ops'])));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toMatch(/^attachment;/);
    const [header, ...rows] = parseCsv(res.body);
    expect(header?.[0]).toBe('at');
    expect(header).toContain('money.deferred');
    const json = (
      await app.inject({ method: 'GET', url: `/api/v1/reports/credits?${q}`, headers: asAdmin() })
    ).json().data.items as { at: string; currency: string | null; money: { deferred: number } }[];
    expect(rows).toHaveLength(json.length);
    expect(rows.map((r) => [r[0], r[1], Number(r[12])])).toEqual(
      json.map((i) => [i.at, i.currency ?? '', i.money.deferred]),
    );
  });
});

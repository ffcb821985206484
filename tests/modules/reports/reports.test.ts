import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import {
  asAdmin,
  asUser,
  bearer,
  buildTestApp,
  createApiKey,
  type TestApp,
  tokenFor,
} from '../../helpers/app.ts';
import { debit } from '../ledger/ledger-helpers.ts';
import { buy, createPackage, randomHistory, seeded, spreadOverDays } from './history.ts';

let t: TestApp;
let app: App;
let debitKey: string;

const get = (url: string, headers: Record<string, string> = asAdmin()) =>
  app.inject({ method: 'GET', url, headers });

interface Item {
  at: string;
  currency: string | null;
  credits: Record<'granted' | 'debited' | 'debitReversed' | 'clawedBack' | 'expired' | 'outstanding', number>;
  money: Record<'sold' | 'recognized' | 'breakage' | 'clawedBack' | 'deferred', number>;
}

async function report(query: string): Promise<Item[]> {
  const res = await get(`/api/v1/reports/credits?${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().data.items;
}

const SEED = Number(process.env.REPORT_SEED ?? 20_261_207);
const USERS = ['r_a', 'r_b', 'r_c'];
const BASE = '2026-03-02T00:00:00Z'; // a Monday

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  debitKey = await createApiKey(app, ['credits:debit']);
  await randomHistory(app, t.pg, debitKey, SEED, USERS);
  await spreadOverDays(t.pg, BASE, 5);
});

/** Entries straight from the table, for the replays. */
async function entries() {
  const { rows } = await t.pg.query<{ user_id: string; type: string; amount: number; at: Date }>(
    'select user_id, type, amount::int, created_at as at from ledger_entries order by created_at, id',
  );
  return rows;
}

describe('balance history', () => {
  it(`equals a replay of the entries (seed ${SEED}), by hour, day, week and month, empty intervals kept`, async () => {
    const all = await entries();
    const r = seeded(SEED + 1);
    const first = Date.parse(BASE);
    const last = all.length ? (all[all.length - 1] as { at: Date }).at.getTime() : first;
    const cases: [string, number][] = [
      ['hour', 3_600_000],
      ['day', 86_400_000],
      ['week', 0],
      ['month', 0],
    ];
    for (const userId of USERS) {
      const mine = all.filter((e) => e.user_id === userId);
      for (const [interval, len] of cases) {
        const span = interval === 'hour' ? 900 * 3_600_000 : last - first + 3 * 86_400_000;
        const from = new Date(first - 86_400_000 + r.int(0, 5) * 3_600_000 + r.int(0, 999));
        const to = new Date(Math.min(from.getTime() + span, from.getTime() + (len || 1) * 999));
        const res = await get(
          `/api/v1/accounts/${userId}/balance-history?interval=${interval}&from=${from.toISOString()}&to=${to.toISOString()}`,
        );
        expect(res.statusCode, res.body).toBe(200);
        const { items } = res.json().data as {
          items: { at: string; balance: number; credited: number; debited: number }[];
        };
        expect(items.length).toBeGreaterThan(0);
        for (const [i, item] of items.entries()) {
          const start = Date.parse(item.at);
          const next = items[i + 1];
          const end = next ? Date.parse(next.at) : endOf(start, interval);
          if (next) expect(end).toBe(endOf(start, interval));
          const before = mine.filter((e) => e.at.getTime() < end);
          const within = before.filter((e) => e.at.getTime() >= start);
          expect(item.balance).toBe(before.reduce((s, e) => s + e.amount, 0));
          expect(item.credited).toBe(within.filter((e) => e.amount > 0).reduce((s, e) => s + e.amount, 0));
          expect(item.debited).toBe(0 - within.filter((e) => e.amount < 0).reduce((s, e) => s + e.amount, 0));
        }
        // the first interval is the one `from` falls in; the last, the one just before `to`
        expect(Date.parse(items[0]?.at ?? '')).toBeLessThanOrEqual(from.getTime());
        expect(endOf(Date.parse(items[items.length - 1]?.at ?? ''), interval)).toBeGreaterThanOrEqual(
          to.getTime(),
        );
        if (interval === 'week') for (const item of items) expect(new Date(item.at).getUTCDay()).toBe(1);
        if (interval === 'month') for (const item of items) expect(new Date(item.at).getUTCDate()).toBe(1);
      }
    }
  });

  it('defaults to the last 30 days by day; more than 1,000 intervals is 400; who may read it', async () => {
    const res = await get('/api/v1/accounts/r_a/balance-history');
    expect(res.statusCode).toBe(200);
    expect(res.json().data.interval).toBe('day');
    expect(res.json().data.items.length).toBe(31);
    const tooMany = await get(
      '/api/v1/accounts/r_a/balance-history?interval=hour&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z',
    );
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().code).toBe('validation_failed');
    expect(tooMany.json().errors[0]).toContain('querystring.interval');
    const bad = await get('/api/v1/accounts/r_a/balance-history?interval=year');
    expect(bad.statusCode).toBe(400);
    const ledgerRead = await createApiKey(app, ['ledger:read']);
    const balancesRead = await createApiKey(app, ['balances:read']);
    expect((await get('/api/v1/accounts/r_a/balance-history', asUser('r_a'))).statusCode).toBe(200);
    expect((await get('/api/v1/accounts/r_a/balance-history', asUser('r_b'))).statusCode).toBe(403);
    expect((await get('/api/v1/accounts/r_a/balance-history', { 'x-api-key': ledgerRead })).statusCode).toBe(
      200,
    );
    expect(
      (await get('/api/v1/accounts/r_a/balance-history', { 'x-api-key': balancesRead })).statusCode,
    ).toBe(403);
    expect(
      (await get('/api/v1/accounts/r_a/balance-history', bearer(tokenFor('ops_1', ['ops'])))).statusCode,
    ).toBe(200);
  });
});

function endOf(start: number, interval: string) {
  const d = new Date(start);
  if (interval === 'hour') return start + 3_600_000;
  if (interval === 'day') return start + 86_400_000;
  if (interval === 'week') return start + 7 * 86_400_000;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

describe('the credits report', () => {
  it(`keeps its identity for every interval and currency over a random history (seed ${SEED})`, async () => {
    for (const interval of ['day', 'week', 'month']) {
      const items = await report(`interval=${interval}&from=2026-02-01T00:00:00Z&to=2026-05-01T00:00:00Z`);
      const currencies = [...new Set(items.map((i) => i.currency))].sort();
      expect(currencies).toEqual(['eur', 'usd', null].sort());
      const ats = [...new Set(items.map((i) => i.at))];
      for (const currency of currencies) {
        const mine = items.filter((i) => i.currency === currency);
        // one item per interval, oldest first, empty intervals included
        expect(mine.map((i) => i.at)).toEqual(ats);
        let deferred = 0;
        let outstanding = 0;
        for (const i of mine) {
          expect(deferred + i.money.sold - i.money.recognized - i.money.breakage - i.money.clawedBack).toBe(
            i.money.deferred,
          );
          expect(
            outstanding +
              i.credits.granted -
              i.credits.debited +
              i.credits.debitReversed -
              i.credits.clawedBack -
              i.credits.expired,
          ).toBe(i.credits.outstanding);
          expect(i.money.deferred).toBeGreaterThanOrEqual(0);
          deferred = i.money.deferred;
          outstanding = i.credits.outstanding;
        }
        // at the end: what the lots hold, and the deferred cost of what is left in them
        const { rows } = await t.pg.query<{ remaining: number; deferred: number }>(
          `select coalesce(sum(remaining), 0)::int as remaining,
                  coalesce(sum(coalesce(price, 0) - floor(coalesce(price, 0)::numeric * (amount - remaining) / amount)), 0)::int
                    as deferred
           from credit_lots where currency is not distinct from $1`,
          [currency],
        );
        expect(outstanding).toBe(rows[0]?.remaining);
        expect(deferred).toBe(rows[0]?.deferred);
      }
      // credits moved per interval, all currencies together, are the ledger's entries of that interval
      const all = await entries();
      for (const at of ats) {
        const start = Date.parse(at);
        const within = all.filter((e) => e.at.getTime() >= start && e.at.getTime() < endOf(start, interval));
        const sum = (type: string) => within.filter((e) => e.type === type).reduce((s, e) => s + e.amount, 0);
        const of = (f: (i: Item) => number) => items.filter((i) => i.at === at).reduce((s, i) => s + f(i), 0);
        expect(of((i) => i.credits.granted)).toBe(sum('grant'));
        expect(of((i) => i.credits.debited)).toBe(0 - sum('debit'));
        expect(of((i) => i.credits.debitReversed)).toBe(sum('debit_reversal'));
        expect(of((i) => i.credits.clawedBack)).toBe(0 - sum('reversal'));
        expect(of((i) => i.credits.expired)).toBe(0 - sum('expiry'));
      }
    }
    // history has every kind of movement
    const kinds = new Set((await entries()).map((e) => e.type));
    expect(kinds).toEqual(new Set(['grant', 'debit', 'reversal', 'expiry', 'debit_reversal']));
  });

  it('a report starting mid-history opens with the deferred the longer one had', async () => {
    const whole = await report('interval=week&from=2026-02-01T00:00:00Z&to=2026-05-01T00:00:00Z');
    const part = await report('interval=week&from=2026-03-16T00:00:00Z&to=2026-05-01T00:00:00Z');
    for (const currency of ['usd', 'eur', null]) {
      const w = whole.filter((i) => i.currency === currency);
      const p = part.filter((i) => i.currency === currency);
      expect(p).toEqual(w.slice(w.length - p.length));
    }
  });

  it('a lot used up recognizes exactly its price; ledger:verify agrees per currency', async () => {
    const pkg = await createPackage(app, 3, 1000, 'gbp');
    await buy(app, t.pg, { userId: 'whole_lot', packageId: pkg, credits: 3, price: 1000, currency: 'gbp' });
    for (let i = 0; i < 3; i++)
      expect((await debit(app, debitKey, 'whole_lot', { amount: 1 })).statusCode).toBe(201);
    const now = new Date();
    const items = await report(
      `interval=day&from=${new Date(now.getTime() - 86_400_000).toISOString()}&to=${new Date(now.getTime() + 86_400_000).toISOString()}`,
    );
    const gbp = items.filter((i) => i.currency === 'gbp');
    expect(gbp.reduce((s, i) => s + i.money.sold, 0)).toBe(1000);
    expect(gbp.reduce((s, i) => s + i.money.recognized, 0)).toBe(1000);
    expect(gbp[gbp.length - 1]?.money.deferred).toBe(0);
    const lots = await get('/api/v1/accounts/whole_lot/lots');
    expect(lots.json().data.items[0]).toMatchObject({
      amount: 3,
      remaining: 0,
      status: 'spent',
      price: 1000,
      currency: 'gbp',
    });
    const check = await app.services.reports.costCheck();
    for (const c of check) {
      expect(c.by_movements, `${c.currency}`).toBe(c.by_lots);
      expect(c.credits_by_movements).toBe(c.credits_by_lots);
    }
  });

  it('bad ranges are 400; admin and ops only', async () => {
    expect((await get('/api/v1/reports/credits?interval=hour')).statusCode).toBe(400);
    expect(
      (await get('/api/v1/reports/credits?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z')).statusCode,
    ).toBe(400);
    expect(
      (await get('/api/v1/reports/credits?interval=day&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z'))
        .statusCode,
    ).toBe(400);
    const ledgerRead = await createApiKey(app, ['ledger:read']);
    expect((await get('/api/v1/reports/credits', bearer(tokenFor('ops_1', ['ops'])))).statusCode).toBe(200);
    expect((await get('/api/v1/reports/credits', asUser('r_a'))).statusCode).toBe(403);
    expect((await get('/api/v1/reports/credits', { 'x-api-key': ledgerRead })).statusCode).toBe(403);
  });
});

describe('lots', () => {
  it('lists each grant’s lot with its price, status filter and paging; who may read them', async () => {
    const pkg = await createPackage(app, 5, 250, 'usd');
    await buy(app, t.pg, { userId: 'lots_u', packageId: pkg, credits: 5, price: 250, currency: 'usd' });
    await buy(app, t.pg, {
      userId: 'lots_u',
      packageId: pkg,
      credits: 5,
      price: 250,
      currency: 'usd',
      expiresAt: new Date(Date.now() + 5_000),
    });
    await buy(app, t.pg, { userId: 'lots_u', packageId: pkg, credits: 5, price: 250, currency: 'usd' });
    await debit(app, debitKey, 'lots_u', { amount: 5 }); // the expiring lot first: spent, never expired
    await buy(app, t.pg, {
      userId: 'lots_u',
      packageId: pkg,
      credits: 5,
      price: 250,
      currency: 'usd',
      expiresAt: new Date(Date.now() + 200),
    });
    await new Promise((r) => setTimeout(r, 300));
    const page1 = await get('/api/v1/accounts/lots_u/lots?limit=2');
    expect(page1.statusCode).toBe(200);
    const page2 = await get(`/api/v1/accounts/lots_u/lots?limit=2&cursor=${page1.json().data.nextCursor}`);
    const lots = [...page1.json().data.items, ...page2.json().data.items];
    expect(lots.map((l: { status: string }) => l.status)).toEqual(['expired', 'active', 'spent', 'active']);
    expect(lots[0]).toMatchObject({
      amount: 5,
      remaining: 5,
      held: 0,
      price: 250,
      currency: 'usd',
      source: 'dev',
    });
    expect(page2.json().data.nextCursor).toBeNull();
    const active = await get('/api/v1/accounts/lots_u/lots?status=active');
    expect(active.json().data.items).toHaveLength(2);
    expect((await get('/api/v1/accounts/lots_u/lots?status=expired')).json().data.items).toHaveLength(1);
    expect((await get('/api/v1/accounts/lots_u/lots', asUser('lots_u'))).statusCode).toBe(200);
    expect((await get('/api/v1/accounts/lots_u/lots', asUser('r_a'))).statusCode).toBe(403);
    expect((await get('/api/v1/accounts/lots_u/lots', bearer(tokenFor('ops_2', ['ops'])))).statusCode).toBe(
      200,
    );
    const ledgerRead = await createApiKey(app, ['ledger:read']);
    const balancesRead = await createApiKey(app, ['balances:read']);
    expect((await get('/api/v1/accounts/lots_u/lots', { 'x-api-key': ledgerRead })).statusCode).toBe(200);
    expect((await get('/api/v1/accounts/lots_u/lots', { 'x-api-key': balancesRead })).statusCode).toBe(403);
    expect((await get('/api/v1/accounts/lots_u/lots', { 'x-api-key': debitKey })).statusCode).toBe(403);
    expect((await get('/api/v1/accounts/lots_u/lots?status=gone')).statusCode).toBe(400);
  });
});

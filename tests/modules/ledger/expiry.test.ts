import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import { buildTestApp, createApiKey, grant, type TestApp, balanceOf } from '../../helpers/app.ts';
import { debit, entryRows, inconsistentAccounts, lotRows } from './ledger-helpers.ts';

let t: TestApp;
let app: App;
let key: string;

const HOUR = 3_600_000;
const inHours = (h: number) => new Date(Date.now() + h * HOUR);

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  key = await createApiKey(app, ['credits:debit']);
});

/** Moves a lot's expiry into the past (credit_lots is not append-only; its entry is written later). */
async function expireLotNow(lotId: number) {
  await t.pg.query(`update credit_lots set expires_at = now() - interval '1 second' where id = $1`, [lotId]);
}

/** Waits (bounded) until a connection of the app is blocked on a lock: the sweeper has reached the held row. */
async function waitForLockWait() {
  for (let i = 0; i < 200; i++) {
    const { rows } = await t.pg.query(
      `select 1 from pg_stat_activity
       where datname = current_database() and application_name = 'credits-service' and wait_event_type = 'Lock'`,
    );
    if (rows.length > 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the sweeper never waited on the lock');
}

describe('spend order', () => {
  it('a debit takes the lot that expires soonest first, then the never-expiring one', async () => {
    await grant(app, 'order_user', 10); // never expires, granted first
    await grant(app, 'order_user', 5, { expiresAt: inHours(48) });
    await grant(app, 'order_user', 4, { expiresAt: inHours(2) });

    expect((await debit(app, key, 'order_user', { amount: 6 })).statusCode).toBe(201);
    const lots = await lotRows(t.pg, 'order_user');
    // The 2-hour lot is emptied, then 2 come from the 48-hour lot; the never-expiring lot is untouched.
    expect(lots.map((l) => [l.amount, l.remaining])).toEqual([
      [10, 10],
      [5, 3],
      [4, 0],
    ]);
    expect((await balanceOf(app, 'order_user')).balance).toBe(13);
  });

  it('among never-expiring lots, the oldest is spent first', async () => {
    await grant(app, 'fifo_user', 3);
    await grant(app, 'fifo_user', 3);
    expect((await debit(app, key, 'fifo_user', { amount: 4 })).statusCode).toBe(201);
    expect((await lotRows(t.pg, 'fifo_user')).map((l) => l.remaining)).toEqual([0, 2]);
  });
});

describe('expired credits', () => {
  it('are never spent: excluded from the balance, a larger debit is 402, and the debit writes the expiry entry', async () => {
    await grant(app, 'exp_user', 5); // never expires
    await grant(app, 'exp_user', 7, { expiresAt: new Date(Date.now() - 1000) }); // already past its expiry
    // The grant itself is on the ledger, the expiry entry not yet; the balance read already leaves it out.
    expect((await entryRows(t.pg, 'exp_user')).map((e) => e.type)).toEqual(['grant', 'grant']);
    expect((await balanceOf(app, 'exp_user')).balance).toBe(5);

    const refused = await debit(app, key, 'exp_user', { amount: 6 });
    expect(refused.statusCode).toBe(402);
    expect(refused.json().errors).toEqual([
      'Insufficient credits: available 5 (balance 5, 0 of it held), requested 6',
    ]);

    // The refused debit still wrote the expiry (lazily, in its own transaction).
    const rows = await entryRows(t.pg, 'exp_user');
    expect(rows.map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 5, 5],
      ['grant', 7, 12],
      ['expiry', -7, 5],
    ]);
    expect(rows[2]?.metadata).toMatchObject({ lotId: expect.any(String), expiredAt: expect.any(String) });
    expect((await lotRows(t.pg, 'exp_user')).map((l) => l.remaining)).toEqual([5, 0]);

    const ok = await debit(app, key, 'exp_user', { amount: 5 });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().data.balance).toBe(0);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('a lot that passes its expiry after being granted is expired by the next debit, not spent', async () => {
    await grant(app, 'late_user', 4, { expiresAt: inHours(1) });
    await grant(app, 'late_user', 3);
    const [soon] = await lotRows(t.pg, 'late_user');
    await expireLotNow(soon!.id);
    expect((await balanceOf(app, 'late_user')).balance).toBe(3);

    const res = await debit(app, key, 'late_user', { amount: 2 });
    expect(res.statusCode).toBe(201);
    expect(res.json().data.balance).toBe(1);
    expect((await entryRows(t.pg, 'late_user')).map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 4, 4],
      ['grant', 3, 7],
      ['expiry', -4, 3],
      ['debit', -2, 1],
    ]);
    expect((await lotRows(t.pg, 'late_user')).map((l) => l.remaining)).toEqual([0, 1]);
  });

  it('the sweeper writes expiry entries, and two sweeps at once expire each lot once', async () => {
    const users = ['sweep_a', 'sweep_b', 'sweep_c'];
    for (const u of users) {
      await grant(app, u, 2);
      await grant(app, u, 6, { expiresAt: inHours(1) });
      const lots = await lotRows(t.pg, u);
      await expireLotNow(lots[1]!.id);
    }
    const [first, second] = await Promise.all([
      app.services.ledger.sweepExpired(),
      app.services.ledger.sweepExpired(),
    ]);
    // Between them the two sweeps expired 6 credits of each user, once.
    expect((first ?? 0) + (second ?? 0)).toBe(18);
    for (const u of users) {
      const rows = await entryRows(t.pg, u);
      expect(rows.filter((e) => e.type === 'expiry').map((e) => [e.amount, e.balance_after])).toEqual([
        [-6, 2],
      ]);
      expect((await balanceOf(app, u)).balance).toBe(2);
    }
    expect(await app.services.ledger.sweepExpired()).toBe(0);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('a sweep that meets a ledger operation in flight waits for it and keeps the ledger consistent', async () => {
    await grant(app, 'race_user', 5, { expiresAt: inHours(1) });
    const [lot] = await lotRows(t.pg, 'race_user');
    // A grant in flight: it holds the account row lock until it commits.
    const holder = await t.pg.connect();
    try {
      await holder.query('begin');
      await holder.query(
        `select credits_grant('race_user', 10, 'dev', null, 'race-grant', 'in flight', '{}'::jsonb, null)`,
      );
      await expireLotNow(lot!.id);
      const sweep = app.services.ledger.sweepExpired();
      await waitForLockWait();
      await holder.query('commit');
      expect(await sweep).toBe(5);
    } finally {
      holder.release();
    }
    expect((await entryRows(t.pg, 'race_user')).map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 5, 5],
      ['grant', 10, 15],
      ['expiry', -5, 10],
    ]);
    expect((await balanceOf(app, 'race_user')).balance).toBe(10);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('expiringSoon', () => {
  it('lists the remaining expiring credits per expiry time, soonest first, leaving out spent and expired ones', async () => {
    const a = inHours(24);
    const b = inHours(72);
    const c = inHours(5);
    await grant(app, 'soon_user', 10); // never expires: not listed
    await grant(app, 'soon_user', 3, { expiresAt: a });
    await grant(app, 'soon_user', 4, { expiresAt: a }); // same time: summed
    await grant(app, 'soon_user', 8, { expiresAt: b });
    await grant(app, 'soon_user', 2, { expiresAt: c });
    await grant(app, 'soon_user', 9, { expiresAt: new Date(Date.now() - 1000) }); // already expired
    expect((await debit(app, key, 'soon_user', { amount: 3 })).statusCode).toBe(201); // empties c, 1 from a

    const balance = await balanceOf(app, 'soon_user');
    expect(balance.balance).toBe(10 + 7 + 8 + 2 - 3);
    expect(balance.expiringSoon).toEqual([
      { credits: 6, expiresAt: a.toISOString() },
      { credits: 8, expiresAt: b.toISOString() },
    ]);
  });

  it('lists at most 10 expiry times', async () => {
    for (let i = 1; i <= 12; i++) await grant(app, 'many_lots', 1, { expiresAt: inHours(i) });
    const { expiringSoon, balance } = await balanceOf(app, 'many_lots');
    expect(balance).toBe(12);
    expect(expiringSoon).toHaveLength(10);
    const times = expiringSoon.map((x) => Date.parse(x.expiresAt));
    expect([...times].sort((x, y) => x - y)).toEqual(times);
  });
});

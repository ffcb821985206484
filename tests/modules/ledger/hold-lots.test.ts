import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import { buildTestApp, createApiKey, grant, type TestApp, balanceOf } from '../../helpers/app.ts';
import {
  captureHold,
  createHold,
  debit,
  entryRows,
  heldOf,
  holdRows,
  inconsistentAccounts,
  lotRows,
  releaseHold,
} from './ledger-helpers.ts';

// A hold reserved from one lot names it on the hold row (no hold_lot_parts row); a hold from several lots
// has a hold_lot_parts row per lot. Both must capture, release and expire the same way, and leave every
// lot's held amount equal to what the active holds reserve (ledger:verify).

let t: TestApp;
let app: App;
let key: string;

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  key = await createApiKey(app, ['credits:debit']);
});

const HOUR = 3_600_000;

async function holdOf(userId: string, amount: number) {
  const res = await createHold(app, key, userId, { amount });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data.hold as { id: string; amount: number };
}

/** How the hold's reservation is recorded: its lot_id, and its hold_lot_parts rows. */
async function reservationOf(userId: string, holdId: string) {
  const hold = await t.pg.query<{ lot_id: string | null }>(
    'select lot_id from holds where user_id = $1 and id = $2',
    [userId, holdId],
  );
  const parts = await t.pg.query<{ lot_id: string; amount: string }>(
    'select lot_id, amount from hold_lot_parts where user_id = $1 and hold_id = $2 order by lot_id',
    [userId, holdId],
  );
  const view = await t.pg.query<{ lot_id: string; amount: string }>(
    'select lot_id, amount from hold_lots where user_id = $1 and hold_id = $2 order by lot_id',
    [userId, holdId],
  );
  const lot = (id: string | null) => (id === null ? null : Number(id));
  return {
    lotId: lot(hold.rows[0]?.lot_id ?? null),
    parts: parts.rows.map((r) => [Number(r.lot_id), Number(r.amount)]),
    reserved: view.rows.map((r) => [Number(r.lot_id), Number(r.amount)]),
  };
}

/** The lot each debit entry of the user names (null when it took from several: debit_lots rows). */
async function debitLots(userId: string) {
  const { rows } = await t.pg.query<{ lot_id: string | null; parts: string[] | null }>(
    `select e.lot_id, (select array_agg(d.lot_id::text || ':' || d.amount::text order by d.lot_id)
                      from debit_lots d where d.user_id = e.user_id and d.entry_id = e.id) as parts
     from ledger_entries e where e.user_id = $1 and e.type = 'debit' order by e.id`,
    [userId],
  );
  return rows.map((r) => ({ lotId: r.lot_id === null ? null : Number(r.lot_id), parts: r.parts }));
}

describe('a hold on one lot', () => {
  it('names its lot on the hold, writes no hold_lot_parts row, and captures in full from that lot', async () => {
    await grant(app, 'hl_one', 10);
    const [lot] = await lotRows(t.pg, 'hl_one');
    const hold = await holdOf('hl_one', 4);
    expect(await reservationOf('hl_one', hold.id)).toEqual({
      lotId: lot!.id,
      parts: [],
      reserved: [[lot!.id, 4]],
    });
    expect(await heldOf(t.pg, 'hl_one')).toEqual({ balance: 10, held: 4, lots: [4] });
    expect(await inconsistentAccounts(app)).toEqual([]);

    const res = await captureHold(app, key, 'hl_one', hold.id);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().data).toMatchObject({ balance: 6, available: 6, held: 0 });
    expect(res.json().data.hold).toMatchObject({ status: 'captured', capturedAmount: 4 });
    expect(res.json().data.hold).not.toHaveProperty('lotId');
    expect(await heldOf(t.pg, 'hl_one')).toEqual({ balance: 6, held: 0, lots: [0] });
    expect(await debitLots('hl_one')).toEqual([{ lotId: lot!.id, parts: null }]);
    // No longer reserves anything, but keeps the lot it was on.
    expect(await reservationOf('hl_one', hold.id)).toEqual({ lotId: lot!.id, parts: [], reserved: [] });
    expect(await inconsistentAccounts(app)).toEqual([]);

    // The same capture again is a replay of the same entry.
    const again = await captureHold(app, key, 'hl_one', hold.id);
    expect(again.statusCode).toBe(200);
    expect(again.json().data.entry.id).toBe(res.json().data.entry.id);
    expect((await entryRows(t.pg, 'hl_one')).map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 10, 10],
      ['debit', -4, 6],
    ]);
  });

  it('captures part and frees the rest; a release frees all of it', async () => {
    await grant(app, 'hl_part', 10);
    const a = await holdOf('hl_part', 6);
    const b = await holdOf('hl_part', 3);
    expect(await heldOf(t.pg, 'hl_part')).toEqual({ balance: 10, held: 9, lots: [9] });

    const cap = await captureHold(app, key, 'hl_part', a.id, { amount: 2 });
    expect(cap.statusCode, cap.body).toBe(201);
    expect(cap.json().data).toMatchObject({ balance: 8, available: 5, held: 3 });
    expect(await heldOf(t.pg, 'hl_part')).toEqual({ balance: 8, held: 3, lots: [3] });
    expect(await inconsistentAccounts(app)).toEqual([]);

    const rel = await releaseHold(app, key, 'hl_part', b.id);
    expect(rel.statusCode, rel.body).toBe(200);
    expect(rel.json().data).toMatchObject({ balance: 8, available: 8, held: 0 });
    expect(await heldOf(t.pg, 'hl_part')).toEqual({ balance: 8, held: 0, lots: [0] });
    expect((await holdRows(t.pg, 'hl_part')).map((h) => [h.status, h.captured_amount])).toEqual([
      ['captured', 2],
      ['released', 0],
    ]);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('capturing it expires another hold of the account that is due, first', async () => {
    await grant(app, 'hl_other', 10);
    const a = await holdOf('hl_other', 3);
    const b = await holdOf('hl_other', 5);
    await t.pg.query(`update holds set expires_at = now() - interval '1 second' where id = $1`, [b.id]);

    const res = await captureHold(app, key, 'hl_other', a.id);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().data).toMatchObject({ balance: 7, available: 7, held: 0 });
    expect((await holdRows(t.pg, 'hl_other')).map((h) => h.status)).toEqual(['captured', 'expired']);
    expect(await heldOf(t.pg, 'hl_other')).toEqual({ balance: 7, held: 0, lots: [0] });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('past its own expiry: 409 expired, and its credits are available again', async () => {
    await grant(app, 'hl_due', 10);
    const a = await holdOf('hl_due', 4);
    await t.pg.query(`update holds set expires_at = now() - interval '1 second' where id = $1`, [a.id]);
    const res = await captureHold(app, key, 'hl_due', a.id);
    expect(res.statusCode).toBe(409);
    expect(await heldOf(t.pg, 'hl_due')).toEqual({ balance: 10, held: 0, lots: [0] });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('on a lot that expired during the hold: a part capture spends the part, and the rest expires at once', async () => {
    await grant(app, 'hl_lotdue', 10, { expiresAt: new Date(Date.now() + HOUR) });
    const [lot] = await lotRows(t.pg, 'hl_lotdue');
    const a = await holdOf('hl_lotdue', 4);
    await t.pg.query(`update credit_lots set expires_at = now() - interval '1 second' where id = $1`, [
      lot!.id,
    ]);

    const res = await captureHold(app, key, 'hl_lotdue', a.id, { amount: 1 });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().data).toMatchObject({ balance: 0, held: 0 });
    expect((await entryRows(t.pg, 'hl_lotdue')).map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 10, 10],
      ['debit', -1, 9],
      ['expiry', -9, 0], // the lot's unheld 6 and the hold's uncaptured 3, freed onto an expired lot
    ]);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('a hold on several lots', () => {
  it('has a hold_lot_parts row per lot, captures in spend order and frees the rest', async () => {
    await grant(app, 'hl_many', 3, { expiresAt: new Date(Date.now() + HOUR) });
    await grant(app, 'hl_many', 5);
    const [soon, never] = await lotRows(t.pg, 'hl_many');
    const hold = await holdOf('hl_many', 6);
    expect(await reservationOf('hl_many', hold.id)).toEqual({
      lotId: null,
      parts: [
        [soon!.id, 3],
        [never!.id, 3],
      ],
      reserved: [
        [soon!.id, 3],
        [never!.id, 3],
      ],
    });
    expect(await heldOf(t.pg, 'hl_many')).toEqual({ balance: 8, held: 6, lots: [3, 3] });
    expect(await inconsistentAccounts(app)).toEqual([]);

    const res = await captureHold(app, key, 'hl_many', hold.id, { amount: 4 });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().data).toMatchObject({ balance: 4, available: 4, held: 0 });
    expect(await heldOf(t.pg, 'hl_many')).toEqual({ balance: 4, held: 0, lots: [0, 0] });
    expect((await lotRows(t.pg, 'hl_many')).map((l) => l.remaining)).toEqual([0, 4]);
    expect(await debitLots('hl_many')).toEqual([{ lotId: null, parts: [`${soon!.id}:3`, `${never!.id}:1`] }]);
    expect(await reservationOf('hl_many', hold.id)).toEqual({ lotId: null, parts: [], reserved: [] });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('a release frees every lot and deletes its rows; an expired one too', async () => {
    await grant(app, 'hl_many_rel', 2);
    await grant(app, 'hl_many_rel', 2);
    const a = await holdOf('hl_many_rel', 3);
    const rel = await releaseHold(app, key, 'hl_many_rel', a.id);
    expect(rel.statusCode, rel.body).toBe(200);
    expect(await heldOf(t.pg, 'hl_many_rel')).toEqual({ balance: 4, held: 0, lots: [0, 0] });
    expect(await reservationOf('hl_many_rel', a.id)).toEqual({ lotId: null, parts: [], reserved: [] });

    const b = await holdOf('hl_many_rel', 4);
    expect((await reservationOf('hl_many_rel', b.id)).parts).toHaveLength(2);
    await t.pg.query(`update holds set expires_at = now() - interval '1 second' where id = $1`, [b.id]);
    // The next operation expires it lazily, then spends what it freed.
    const res = await debit(app, key, 'hl_many_rel', { amount: 4 });
    expect(res.statusCode, res.body).toBe(201);
    expect((await holdRows(t.pg, 'hl_many_rel')).map((h) => h.status)).toEqual(['released', 'expired']);
    expect(await heldOf(t.pg, 'hl_many_rel')).toEqual({ balance: 0, held: 0, lots: [0, 0] });
    expect(await reservationOf('hl_many_rel', b.id)).toEqual({ lotId: null, parts: [], reserved: [] });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('ledger:verify and one-lot holds', () => {
  it('reports a lot whose held amount is not what its one-lot hold reserves', async () => {
    await grant(app, 'hl_broken', 10);
    await holdOf('hl_broken', 4);
    expect(await inconsistentAccounts(app)).toEqual([]);
    await t.pg.query(`update credit_lots set held = 3 where user_id = 'hl_broken'`);
    const bad = await inconsistentAccounts(app);
    expect(bad.map((r) => r.user_id)).toEqual(['hl_broken']);
    expect(bad[0]).toMatchObject({ lots_held_breaks: 1 });
    await t.pg.query(`update credit_lots set held = 4 where user_id = 'hl_broken'`);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('debits beside holds', () => {
  it('a debit replays its key whether or not the lot still covers it, and spends only what is available', async () => {
    await grant(app, 'hl_debit', 5);
    const first = await debit(app, key, 'hl_debit', { amount: 3 }, 'hl-debit-1');
    expect(first.statusCode, first.body).toBe(201);
    await holdOf('hl_debit', 2);
    // Nothing available now: the replay still answers the first result.
    const replay = await debit(app, key, 'hl_debit', { amount: 3 }, 'hl-debit-1');
    expect(replay.statusCode).toBe(200);
    expect(replay.json().data.entry.id).toBe(first.json().data.entry.id);
    expect((await debit(app, key, 'hl_debit', { amount: 1 })).statusCode).toBe(402);
    expect(await balanceOf(app, 'hl_debit')).toMatchObject({ balance: 2, available: 0, held: 2 });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('one idempotency key, concurrent transactions', () => {
  it('20 concurrent credits_debit calls with one key write one debit; the others replay it', async () => {
    await grant(app, 'hl_key_debit', 100);
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.pg.query<{ outcome: string; balance: string }>(
          `select outcome, balance from credits_debit('hl_key_debit', 3, 'hl-same-key', 'hash-1', null, '{}')`,
        ),
      ),
    );
    const outcomes = results.map((r) => r.rows[0]!.outcome).sort();
    expect(outcomes).toEqual(['created', ...Array(19).fill('replayed')]);
    expect(new Set(results.map((r) => Number(r.rows[0]!.balance)))).toEqual(new Set([97]));
    expect((await entryRows(t.pg, 'hl_key_debit')).map((e) => e.type)).toEqual(['grant', 'debit']);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('20 concurrent holds with one key reserve once: one 201, nineteen 200 replays of the same hold', async () => {
    await grant(app, 'hl_key_hold', 10);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => createHold(app, key, 'hl_key_hold', { amount: 4 }, 'hl-hold-key')),
    );
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.statusCode === 200)).toHaveLength(19);
    expect(new Set(responses.map((r) => r.json().data.hold.id)).size).toBe(1);
    expect(await heldOf(t.pg, 'hl_key_hold')).toEqual({ balance: 10, held: 4, lots: [4] });
    expect(await holdRows(t.pg, 'hl_key_hold')).toHaveLength(1);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

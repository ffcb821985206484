import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import { buildTestApp, createApiKey, grant, type TestApp, balanceOf } from '../../helpers/app.ts';
import {
  captureHold,
  createHold,
  debit,
  entryRows,
  inconsistentAccounts,
  lotRows,
  reverseDebit,
} from './ledger-helpers.ts';

let t: TestApp;
let app: App;
let key: string;

const HOUR = 3_600_000;

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  key = await createApiKey(app, ['credits:debit']);
});

async function debitOf(userId: string, amount: number): Promise<string> {
  const res = await debit(app, key, userId, { amount });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data.entry.id as string;
}

describe('a debit reversal', () => {
  it('gives credits back to the lots the debit took them from, as a debit_reversal entry', async () => {
    await grant(app, 'r_shape', 5, { expiresAt: new Date(Date.now() + 2 * HOUR) });
    await grant(app, 'r_shape', 10);
    const entryId = await debitOf('r_shape', 7); // 5 from the expiring lot, 2 from the other
    expect((await lotRows(t.pg, 'r_shape')).map((l) => l.remaining)).toEqual([0, 8]);

    const res = await reverseDebit(
      app,
      key,
      'r_shape',
      entryId,
      { amount: 3, reason: 'job failed' },
      'rev-1',
    );
    expect(res.statusCode).toBe(201);
    expect(res.json().data).toMatchObject({
      entry: {
        type: 'debit_reversal',
        amount: 3,
        balanceAfter: 11,
        reversesEntryId: entryId,
        reason: 'job failed',
        idempotencyKey: 'rev-1',
      },
      balance: 11,
      available: 11,
      held: 0,
    });
    // Latest-expiring first: the never-expiring lot gets its 2 back, then 1 to the expiring lot.
    expect((await lotRows(t.pg, 'r_shape')).map((l) => l.remaining)).toEqual([1, 10]);

    // Replays: same key and body, the first result; another body, 409.
    const again = await reverseDebit(
      app,
      key,
      'r_shape',
      entryId,
      { amount: 3, reason: 'job failed' },
      'rev-1',
    );
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().data.entry).toEqual(res.json().data.entry);
    const reused = await reverseDebit(app, key, 'r_shape', entryId, { amount: 2 }, 'rev-1');
    expect(reused.statusCode).toBe(409);
    expect(reused.json().code).toBe('idempotency_key_reused');

    // No body: all that is left (4). Then nothing is left: 409.
    const rest = await reverseDebit(app, key, 'r_shape', entryId);
    expect(rest.statusCode).toBe(201);
    expect(rest.json().data.entry.amount).toBe(4);
    expect((await lotRows(t.pg, 'r_shape')).map((l) => l.remaining)).toEqual([5, 10]);
    const none = await reverseDebit(app, key, 'r_shape', entryId);
    expect(none.statusCode).toBe(409);
    expect(none.json().code).toBe('conflict');
    expect(await balanceOf(app, 'r_shape')).toMatchObject({ balance: 15 });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('is 409 beyond what is left, and 404 for anything but a debit of that user', async () => {
    await grant(app, 'r_404', 10);
    await grant(app, 'r_other', 10);
    const entryId = await debitOf('r_404', 4);
    expect((await reverseDebit(app, key, 'r_404', entryId, { amount: 5 })).statusCode).toBe(409);
    const grantEntry = (await entryRows(t.pg, 'r_404'))[0]?.id;
    for (const [user, id] of [
      ['r_404', String(grantEntry)],
      ['r_other', entryId],
      ['r_404', '999999999'],
      ['r_404', 'abc'],
      ['r_404', '0'],
      ['nobody_r', entryId],
    ]) {
      const res = await reverseDebit(app, key, user as string, id as string, { amount: 1 });
      expect(res.statusCode, `${user} ${id}`).toBe(404);
      expect(res.json().code).toBe('not_found');
    }
    expect((await reverseDebit(app, key, 'r_404', entryId, { amount: 0 })).statusCode).toBe(400);
    expect((await reverseDebit(app, key, 'r_404', entryId, { amount: 1 }, null)).statusCode).toBe(400);
    const readKey = await createApiKey(app, ['ledger:read']);
    expect((await reverseDebit(app, readKey, 'r_404', entryId, { amount: 1 })).statusCode).toBe(403);
    expect(await balanceOf(app, 'r_404')).toMatchObject({ balance: 6 });
  });

  it('20 concurrent reversals of one debit: the total reversed equals the debit', async () => {
    await grant(app, 'r_race', 20);
    const entryId = await debitOf('r_race', 10);
    const partial = await Promise.all(
      Array.from({ length: 20 }, () => reverseDebit(app, key, 'r_race', entryId, { amount: 1 })),
    );
    expect(partial.filter((r) => r.statusCode === 201)).toHaveLength(10);
    expect(partial.filter((r) => r.statusCode === 409)).toHaveLength(10);

    const second = await debitOf('r_race', 8);
    const whole = await Promise.all(
      Array.from({ length: 20 }, () => reverseDebit(app, key, 'r_race', second)),
    );
    expect(whole.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(whole.filter((r) => r.statusCode === 409)).toHaveLength(19);

    const rows = await entryRows(t.pg, 'r_race');
    const reversed = (id: string) =>
      rows
        .filter((e) => e.type === 'debit_reversal' && String(e.reverses_entry_id) === id)
        .reduce((sum, e) => sum + e.amount, 0);
    expect(reversed(entryId)).toBe(10);
    expect(reversed(second)).toBe(8);
    expect(await balanceOf(app, 'r_race')).toMatchObject({ balance: 20 });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('credits returned to a lot that expired meanwhile expire at once, in the same transaction', async () => {
    await grant(app, 'r_exp', 6, { expiresAt: new Date(Date.now() + HOUR) });
    await grant(app, 'r_exp', 2);
    const entryId = await debitOf('r_exp', 7); // 6 from the expiring lot, 1 from the other
    const [lot] = await lotRows(t.pg, 'r_exp');
    await t.pg.query(`update credit_lots set expires_at = now() - interval '1 second' where id = $1`, [
      lot!.id,
    ]);

    const res = await reverseDebit(app, key, 'r_exp', entryId);
    expect(res.statusCode).toBe(201);
    expect(res.json().data).toMatchObject({ entry: { amount: 7, balanceAfter: 8 }, balance: 2 });
    const rows = await entryRows(t.pg, 'r_exp');
    expect(rows.map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 6, 6],
      ['grant', 2, 8],
      ['debit', -7, 1],
      ['debit_reversal', 7, 8],
      ['expiry', -6, 2],
    ]);
    // One transaction: the reversal and the expiry share their timestamp.
    expect(rows[4]?.created_at.getTime()).toBeGreaterThanOrEqual(rows[3]?.created_at.getTime() ?? Infinity);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('reverses a hold’s capture like any debit', async () => {
    await grant(app, 'r_hold', 10);
    const hold = await createHold(app, key, 'r_hold', { amount: 6 });
    const capture = await captureHold(app, key, 'r_hold', hold.json().data.hold.id, { amount: 4 });
    const entryId = capture.json().data.entry.id as string;
    const res = await reverseDebit(app, key, 'r_hold', entryId);
    expect(res.statusCode).toBe(201);
    expect(res.json().data.entry).toMatchObject({ amount: 4, holdId: hold.json().data.hold.id });
    expect(await balanceOf(app, 'r_hold')).toMatchObject({ balance: 10, available: 10, held: 0 });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('reverses a capture that took from several lots back to those lots', async () => {
    await grant(app, 'r_hold2', 3, { expiresAt: new Date(Date.now() + HOUR) });
    await grant(app, 'r_hold2', 10);
    const hold = await createHold(app, key, 'r_hold2', { amount: 6 }); // 3 + 3
    const capture = await captureHold(app, key, 'r_hold2', hold.json().data.hold.id, { amount: 5 }); // 3 + 2
    expect((await lotRows(t.pg, 'r_hold2')).map((l) => l.remaining)).toEqual([0, 8]);
    const res = await reverseDebit(app, key, 'r_hold2', capture.json().data.entry.id, { amount: 4 });
    expect(res.statusCode).toBe(201);
    // Latest-expiring first: 2 back to the never-expiring lot, then 2 to the other.
    expect((await lotRows(t.pg, 'r_hold2')).map((l) => l.remaining)).toEqual([2, 10]);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('of a debit written before lots were recorded returns its credits as a lot that never expires', async () => {
    await grant(app, 'r_legacy', 10);
    const entryId = await debitOf('r_legacy', 4);
    // As a debit written before this version: no lot recorded (only a test can change an entry).
    const client = await t.pg.connect();
    try {
      await client.query('begin');
      await client.query('alter table ledger_entries disable trigger ledger_entries_no_update_delete');
      await client.query(`update ledger_entries set lot_id = null where user_id = 'r_legacy'`);
      await client.query('alter table ledger_entries enable trigger ledger_entries_no_update_delete');
      await client.query('commit');
    } finally {
      client.release();
    }
    await t.pg.query(`delete from debit_lots where user_id = 'r_legacy'`);
    const res = await reverseDebit(app, key, 'r_legacy', entryId, { amount: 3 });
    expect(res.statusCode).toBe(201);
    expect((await lotRows(t.pg, 'r_legacy')).map((l) => [l.amount, l.remaining, l.expires_at])).toEqual([
      [10, 6, null],
      [3, 3, null],
    ]);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

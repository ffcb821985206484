import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import {
  asAdmin,
  asUser,
  buildTestApp,
  createApiKey,
  grant,
  type TestApp,
  balanceOf,
} from '../../helpers/app.ts';
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

let t: TestApp;
let app: App;
let key: string;

const HOUR = 3_600_000;

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  key = await createApiKey(app, ['credits:debit']);
});

/** Moves a hold's expiry into the past, as if its time had run out. */
const expireHoldNow = (holdId: string) =>
  t.pg.query(`update holds set expires_at = now() - interval '1 second' where id = $1`, [holdId]);
/** Moves a lot's expiry into the past (its expiry entry is written later). */
const expireLotNow = (lotId: number) =>
  t.pg.query(`update credit_lots set expires_at = now() - interval '1 second' where id = $1`, [lotId]);

async function holdOf(userId: string, amount: number, extra: Record<string, unknown> = {}) {
  const res = await createHold(app, key, userId, { amount, ...extra });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data.hold as { id: string; amount: number; status: string; expiresAt: string };
}

describe('creating a hold', () => {
  it('reserves credits: 201 with the hold, no ledger entry, balance unchanged, available lowered', async () => {
    await grant(app, 'h_shape', 10);
    const before = Date.now();
    const res = await createHold(
      app,
      key,
      'h_shape',
      { amount: 4, reason: 'image generation', metadata: { job: 'j1' } },
      'hold-1',
    );
    expect(res.statusCode).toBe(201);
    const { data } = res.json();
    expect(data).toMatchObject({
      hold: {
        id: expect.stringMatching(/^hold_/),
        userId: 'h_shape',
        amount: 4,
        capturedAmount: 0,
        status: 'active',
        reason: 'image generation',
        metadata: { job: 'j1' },
        capturedAt: null,
        releasedAt: null,
        entryId: null,
      },
      balance: 10,
      available: 6,
      held: 4,
    });
    // Default lifetime: 900 s.
    const ttl = Date.parse(data.hold.expiresAt) - Date.parse(data.hold.createdAt);
    expect(ttl).toBe(900_000);
    expect(Date.parse(data.hold.createdAt)).toBeGreaterThanOrEqual(before - 1000);

    expect(await balanceOf(app, 'h_shape')).toMatchObject({ balance: 10, available: 6, held: 4 });
    expect((await entryRows(t.pg, 'h_shape')).map((e) => e.type)).toEqual(['grant']);
    expect(await heldOf(t.pg, 'h_shape')).toEqual({ balance: 10, held: 4, lots: [4] });

    const read = await app.inject({
      method: 'GET',
      url: `/api/v1/accounts/h_shape/holds/${data.hold.id}`,
      headers: { 'x-api-key': key },
    });
    expect(read.statusCode).toBe(200);
    expect(read.json().data).toEqual(data.hold);
  });

  it('replays its Idempotency-Key: same body 200 with the same hold, another body 409', async () => {
    await grant(app, 'h_idem', 10);
    const first = await createHold(app, key, 'h_idem', { amount: 3 }, 'same-key');
    const again = await createHold(app, key, 'h_idem', { amount: 3 }, 'same-key');
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().data.hold).toEqual(first.json().data.hold);
    const other = await createHold(app, key, 'h_idem', { amount: 4 }, 'same-key');
    expect(other.statusCode).toBe(409);
    expect(other.json().code).toBe('idempotency_key_reused');
    expect(await heldOf(t.pg, 'h_idem')).toMatchObject({ held: 3 });
  });

  it('402 beyond available, and debits see available too', async () => {
    await grant(app, 'h_402', 10);
    await holdOf('h_402', 7);
    const tooMuch = await createHold(app, key, 'h_402', { amount: 4 });
    expect(tooMuch.statusCode).toBe(402);
    expect(tooMuch.json()).toMatchObject({
      code: 'insufficient_credits',
      errors: ['Insufficient credits: available 3 (balance 10, 7 of it held), requested 4'],
    });
    expect((await debit(app, key, 'h_402', { amount: 4 })).statusCode).toBe(402);
    const ok = await debit(app, key, 'h_402', { amount: 3 });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().data).toMatchObject({ balance: 7, available: 0, held: 7 });
    expect((await createHold(app, key, 'nobody_here', { amount: 1 })).statusCode).toBe(402);
  });

  it('rejects a bad body or a missing key with 400, and needs credits:debit or admin', async () => {
    await grant(app, 'h_400', 10);
    for (const body of [
      { amount: 0 },
      { amount: '1' },
      { amount: 1, expiresInSeconds: 59 },
      { amount: 1, expiresInSeconds: 86_401 },
      { amount: 1, extra: true },
    ]) {
      const res = await createHold(app, key, 'h_400', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().code).toBe('validation_failed');
    }
    expect((await createHold(app, key, 'h_400', { amount: 1 }, null)).statusCode).toBe(400);
    const readKey = await createApiKey(app, ['ledger:read']);
    expect((await createHold(app, readKey, 'h_400', { amount: 1 })).statusCode).toBe(403);
    const asSelf = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/h_400/holds',
      headers: { ...asUser('h_400'), 'idempotency-key': 'self' },
      payload: { amount: 1 },
    });
    expect(asSelf.statusCode).toBe(403);
    expect(await heldOf(t.pg, 'h_400')).toMatchObject({ held: 0 });
  });
});

describe('holds under concurrency', () => {
  it('100 concurrent holds of 1 on 50 available: exactly 50 succeed and 50 get 402', async () => {
    await grant(app, 'h_race', 30);
    await grant(app, 'h_race', 20, { expiresAt: new Date(Date.now() + HOUR) });
    const responses = await Promise.all(
      Array.from({ length: 100 }, () => createHold(app, key, 'h_race', { amount: 1 })),
    );
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(50);
    expect(responses.filter((r) => r.statusCode === 402)).toHaveLength(50);
    // Reserved in spend order: the expiring lot first.
    expect(await heldOf(t.pg, 'h_race')).toEqual({ balance: 50, held: 50, lots: [30, 20] });
    expect(await balanceOf(app, 'h_race')).toMatchObject({ balance: 50, available: 0, held: 50 });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('holds racing debits never reserve or spend more than the balance, and every capture then succeeds', async () => {
    await grant(app, 'h_mix', 60);
    const requests = Array.from({ length: 120 }, (_, i) =>
      i % 2 === 0
        ? createHold(app, key, 'h_mix', { amount: 1 })
        : debit(app, key, 'h_mix', { amount: 1 }, `mix-debit-${i}`),
    );
    const responses = await Promise.all(requests);
    const ok = responses.filter((r) => r.statusCode === 201);
    expect(ok).toHaveLength(60);
    expect(responses.filter((r) => r.statusCode === 402)).toHaveLength(60);
    const holds = ok.filter((r) => r.json().data.hold).map((r) => r.json().data.hold.id as string);
    const state = await heldOf(t.pg, 'h_mix');
    expect(state.held).toBe(holds.length);
    expect(state.balance).toBe(holds.length); // 60 - debits
    // Every hold is capturable: captures never fail for lack of credits, even all at once.
    const captures = await Promise.all(holds.map((id) => captureHold(app, key, 'h_mix', id)));
    expect(captures.map((c) => c.statusCode)).toEqual(holds.map(() => 201));
    expect(await balanceOf(app, 'h_mix')).toMatchObject({ balance: 0, available: 0, held: 0 });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('20 concurrent captures of one hold: exactly one debit, the others replay it', async () => {
    await grant(app, 'h_cap20', 10);
    const hold = await holdOf('h_cap20', 6);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => captureHold(app, key, 'h_cap20', hold.id, { amount: 4 })),
    );
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(1);
    const replays = responses.filter((r) => r.statusCode === 200);
    expect(replays).toHaveLength(19);
    const entryIds = new Set(responses.map((r) => r.json().data.entry.id));
    expect(entryIds.size).toBe(1);
    expect(replays.every((r) => r.headers['idempotent-replayed'] === 'true')).toBe(true);
    const debits = (await entryRows(t.pg, 'h_cap20')).filter((e) => e.type === 'debit');
    expect(debits.map((e) => [e.amount, e.hold_id])).toEqual([[-4, hold.id]]);
    expect(await balanceOf(app, 'h_cap20')).toMatchObject({ balance: 6, available: 6, held: 0 });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('capturing a hold', () => {
  it('writes one debit with holdId, frees the rest, and answers hold, entry and balance', async () => {
    await grant(app, 'h_cap', 10);
    const hold = await holdOf('h_cap', 8, { reason: 'generation', metadata: { job: 'j9' } });
    const res = await captureHold(app, key, 'h_cap', hold.id, { amount: 3, metadata: { tokens: 1200 } });
    expect(res.statusCode).toBe(201);
    const { data } = res.json();
    expect(data.hold).toMatchObject({ status: 'captured', capturedAmount: 3, entryId: data.entry.id });
    expect(typeof data.hold.capturedAt).toBe('string');
    expect(data.entry).toMatchObject({
      type: 'debit',
      amount: -3,
      balanceAfter: 7,
      holdId: hold.id,
      reason: 'generation',
      metadata: { job: 'j9', tokens: 1200 },
    });
    expect(data).toMatchObject({ balance: 7, available: 7, held: 0 });
    expect(await heldOf(t.pg, 'h_cap')).toEqual({ balance: 7, held: 0, lots: [0] });

    // The same capture again: the first result. Another amount: 409. More than the hold: 400.
    const again = await captureHold(app, key, 'h_cap', hold.id, { amount: 3 });
    expect(again.statusCode).toBe(200);
    expect(again.json().data.entry).toEqual(data.entry);
    expect((await captureHold(app, key, 'h_cap', hold.id, { amount: 2 })).statusCode).toBe(409);
    expect((await captureHold(app, key, 'h_cap', hold.id)).statusCode).toBe(409); // default = 8
    const other = await holdOf('h_cap', 2);
    const over = await captureHold(app, key, 'h_cap', other.id, { amount: 3 });
    expect(over.statusCode).toBe(400);
    expect(over.json().code).toBe('validation_failed');
    // Default: the whole hold.
    const all = await captureHold(app, key, 'h_cap', other.id);
    expect(all.statusCode).toBe(201);
    expect(all.json().data.entry.amount).toBe(-2);
    expect((await captureHold(app, key, 'h_cap', 'hold_unknown')).statusCode).toBe(404);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('after expiry: 409, with the credits available again', async () => {
    await grant(app, 'h_late', 10);
    const hold = await holdOf('h_late', 6);
    await expireHoldNow(hold.id);
    // A read already leaves the expired hold out.
    expect(await balanceOf(app, 'h_late')).toMatchObject({ balance: 10, available: 10, held: 0 });
    const res = await captureHold(app, key, 'h_late', hold.id);
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'conflict', errors: [expect.stringContaining('expired')] });
    expect((await holdRows(t.pg, 'h_late')).map((h) => h.status)).toEqual(['expired']);
    expect(await heldOf(t.pg, 'h_late')).toEqual({ balance: 10, held: 0, lots: [0] });
    expect((await entryRows(t.pg, 'h_late')).map((e) => e.type)).toEqual(['grant']);
    expect((await debit(app, key, 'h_late', { amount: 10 })).statusCode).toBe(201);
  });

  it('of a hold whose lots expired during the hold: succeeds, and the freed rest expires at once', async () => {
    await grant(app, 'h_lotexp', 10, { expiresAt: new Date(Date.now() + HOUR) });
    await grant(app, 'h_lotexp', 3);
    const hold = await holdOf('h_lotexp', 6);
    const [lot] = await lotRows(t.pg, 'h_lotexp');
    await expireLotNow(lot!.id);
    // The lot's unheld 4 are gone for a read; the 6 held stay reserved.
    expect(await balanceOf(app, 'h_lotexp')).toMatchObject({ balance: 9, available: 3, held: 6 });

    const res = await captureHold(app, key, 'h_lotexp', hold.id, { amount: 5 });
    expect(res.statusCode).toBe(201);
    expect(res.json().data).toMatchObject({ balance: 3, available: 3, held: 0 });
    expect((await entryRows(t.pg, 'h_lotexp')).map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 10, 10],
      ['grant', 3, 13],
      ['debit', -5, 8],
      ['expiry', -5, 3], // the lot's unheld 4 and the hold's uncaptured 1, freed onto an expired lot
    ]);
    expect((await lotRows(t.pg, 'h_lotexp')).map((l) => l.remaining)).toEqual([0, 3]);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('releasing a hold', () => {
  it('frees its credits; again answers it again; a captured or expired hold is 409', async () => {
    await grant(app, 'h_rel', 10);
    const hold = await holdOf('h_rel', 4);
    const res = await releaseHold(app, key, 'h_rel', hold.id);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({
      hold: { status: 'released', releasedAt: expect.any(String) },
      balance: 10,
      available: 10,
      held: 0,
    });
    const again = await releaseHold(app, key, 'h_rel', hold.id);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().data.hold).toEqual(res.json().data.hold);
    expect((await captureHold(app, key, 'h_rel', hold.id)).statusCode).toBe(409);

    const captured = await holdOf('h_rel', 2);
    expect((await captureHold(app, key, 'h_rel', captured.id)).statusCode).toBe(201);
    expect((await releaseHold(app, key, 'h_rel', captured.id)).statusCode).toBe(409);
    const expired = await holdOf('h_rel', 2);
    await expireHoldNow(expired.id);
    expect((await releaseHold(app, key, 'h_rel', expired.id)).statusCode).toBe(409);
    expect((await releaseHold(app, key, 'h_rel', 'hold_nope')).statusCode).toBe(404);
    expect((await entryRows(t.pg, 'h_rel')).map((e) => e.type)).toEqual(['grant', 'debit']);
  });

  it('of a hold on an expired lot: writes the expiry of the freed credits', async () => {
    await grant(app, 'h_relexp', 5, { expiresAt: new Date(Date.now() + HOUR) });
    const hold = await holdOf('h_relexp', 5);
    const [lot] = await lotRows(t.pg, 'h_relexp');
    await expireLotNow(lot!.id);
    // Held credits never expire while held.
    expect(await balanceOf(app, 'h_relexp')).toMatchObject({ balance: 5, available: 0, held: 5 });
    const res = await releaseHold(app, key, 'h_relexp', hold.id);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ balance: 0, available: 0, held: 0 });
    expect((await entryRows(t.pg, 'h_relexp')).map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 5, 5],
      ['expiry', -5, 0],
    ]);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('expiry of holds', () => {
  it('happens lazily on the account’s next operation', async () => {
    await grant(app, 'h_lazy', 5);
    const hold = await holdOf('h_lazy', 5);
    await expireHoldNow(hold.id);
    const res = await debit(app, key, 'h_lazy', { amount: 5 });
    expect(res.statusCode).toBe(201);
    expect((await holdRows(t.pg, 'h_lazy')).map((h) => h.status)).toEqual(['expired']);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('and through the sweeper: two sweeps at once expire each hold once', async () => {
    const users = ['h_sw_a', 'h_sw_b', 'h_sw_c'];
    const ids: string[] = [];
    for (const u of users) {
      await grant(app, u, 4);
      const h = await holdOf(u, 3);
      await holdOf(u, 1); // still active
      await expireHoldNow(h.id);
      ids.push(h.id);
    }
    const [a, b] = await Promise.all([
      app.services.ledger.sweepExpiredHolds(),
      app.services.ledger.sweepExpiredHolds(),
    ]);
    expect((a ?? 0) + (b ?? 0)).toBe(3);
    for (const u of users) {
      expect((await holdRows(t.pg, u)).map((h) => h.status)).toEqual(['expired', 'active']);
      expect(await heldOf(t.pg, u)).toEqual({ balance: 4, held: 1, lots: [1] });
    }
    expect(await app.services.ledger.sweepExpiredHolds()).toBe(0);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('clawbacks and holds', () => {
  it('a clawback takes available credits only; the rest is uncollected, and the hold still captures', async () => {
    await grant(app, 'h_claw', 10);
    const hold = await holdOf('h_claw', 8);
    const claw = await app.services.ledger.clawback({
      userId: 'h_claw',
      amount: 10,
      source: 'stripe',
      purchaseId: null,
      idempotencyKey: 'h-claw-1',
      reason: 'refund',
    });
    expect(claw.taken).toBe(2);
    expect(claw.entry.metadata).toMatchObject({ requested: 10, uncollected: 8 });
    expect((await captureHold(app, key, 'h_claw', hold.id)).statusCode).toBe(201);
    expect(await balanceOf(app, 'h_claw')).toMatchObject({ balance: 0, held: 0 });
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('reading holds', () => {
  it('lists newest first with ?status= and pages; reads are for self, admin, ops, ledger:read, credits:debit', async () => {
    await grant(app, 'h_list', 20);
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await holdOf('h_list', 1)).id);
    await releaseHold(app, key, 'h_list', made[1] as string);
    const page1 = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/h_list/holds?limit=2',
      headers: asUser('h_list'),
    });
    expect(page1.statusCode).toBe(200);
    const { items, nextCursor } = page1.json().data;
    expect(items.map((h: { id: string }) => h.id)).toEqual([made[4], made[3]]);
    const page2 = await app.inject({
      method: 'GET',
      url: `/api/v1/accounts/h_list/holds?limit=10&cursor=${nextCursor}`,
      headers: asAdmin(),
    });
    expect(page2.json().data.items.map((h: { id: string }) => h.id)).toEqual([made[2], made[1], made[0]]);
    const released = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/h_list/holds?status=released',
      headers: { 'x-api-key': key },
    });
    expect(released.json().data.items.map((h: { id: string }) => h.id)).toEqual([made[1]]);
    expect(
      (
        await app.inject({
          method: 'GET',
          url: '/api/v1/accounts/h_list/holds?status=nope',
          headers: asAdmin(),
        })
      ).statusCode,
    ).toBe(400);
    // Another user's hold, or another user reading: 404 and 403.
    const other = await app.inject({
      method: 'GET',
      url: `/api/v1/accounts/h_race/holds/${made[0]}`,
      headers: asAdmin(),
    });
    expect(other.statusCode).toBe(404);
    const stranger = await app.inject({
      method: 'GET',
      url: '/api/v1/accounts/h_list/holds',
      headers: asUser('someone_else'),
    });
    expect(stranger.statusCode).toBe(403);
  });
});

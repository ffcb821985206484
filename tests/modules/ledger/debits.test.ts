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
import { debit, entryRows, inconsistentAccounts } from './ledger-helpers.ts';
import { expectError } from '../../helpers/envelope.ts';

let t: TestApp;
let app: App;
let key: string;

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  key = await createApiKey(app, ['credits:debit']);
});

describe('concurrent debits', () => {
  it('150 concurrent 1-credit debits on 70 credits: exactly 70 succeed, 80 get 402, balance 0', async () => {
    await grant(app, 'conc_user', 70);
    const responses = await Promise.all(
      Array.from({ length: 150 }, (_, i) => debit(app, key, 'conc_user', { amount: 1 }, `conc-${i}`)),
    );
    const created = responses.filter((r) => r.statusCode === 201);
    const refused = responses.filter((r) => r.statusCode === 402);
    expect(created).toHaveLength(70);
    expect(refused).toHaveLength(80);

    for (const r of refused) {
      expect(expectError(r, 402, 'insufficient_credits')).toBe(
        'Insufficient credits: available 0 (balance 0, 0 of it held), requested 1',
      );
      expect(r.json().errors).toEqual([
        'Insufficient credits: available 0 (balance 0, 0 of it held), requested 1',
      ]);
    }
    // Every success reports a distinct balance: the 70 debits were applied one after another.
    const balances = created.map((r) => r.json().data.balance as number).sort((a, b) => a - b);
    expect(balances).toEqual(Array.from({ length: 70 }, (_, i) => i));

    expect((await balanceOf(app, 'conc_user')).balance).toBe(0);
    const rows = await entryRows(t.pg, 'conc_user');
    const debits = rows.filter((r) => r.type === 'debit');
    expect(debits).toHaveLength(70);
    expect(debits.every((r) => r.amount === -1)).toBe(true);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

describe('concurrent debits of one account', () => {
  it('two replicas on one database: 2 × 75 concurrent debits on 70 credits still give exactly 70', async () => {
    const other = await buildTestApp({}, t.databaseUrl);
    await grant(app, 'two_replicas', 70);
    const responses = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        debit(i % 2 ? app : other.app, key, 'two_replicas', { amount: 1 }, `replica-${i}`),
      ),
    );
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(70);
    expect(responses.filter((r) => r.statusCode === 402)).toHaveLength(80);
    expect((await balanceOf(app, 'two_replicas')).balance).toBe(0);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('a debit that queued on the account lock is dated after the entry it waited for', async () => {
    await grant(app, 'queued_user', 10);
    const holder = await t.pg.connect();
    try {
      await holder.query('begin');
      await holder.query(`select 1 from accounts where user_id = 'queued_user' for update`);
      const waiting = debit(app, key, 'queued_user', { amount: 1 }, 'queued-late');
      await new Promise((r) => setTimeout(r, 100)); // the service's debit is now waiting for the lock
      await holder.query(`select credits_debit('queued_user', 2, 'queued-first', null, null, '{}'::jsonb)`);
      await holder.query('commit');
      expect((await waiting).statusCode).toBe(201);
    } finally {
      holder.release();
    }
    const rows = await entryRows(t.pg, 'queued_user');
    expect(rows.map((e) => [e.idempotency_key, e.balance_after])).toEqual([
      [expect.any(String), 10],
      ['queued-first', 8],
      ['queued-late', 7],
    ]);
    // Entries in id order are in time order too, so the balance at a time is the one the chain gives.
    const [first, late] = [rows[1], rows[2]];
    expect(late?.created_at.getTime()).toBeGreaterThanOrEqual(first?.created_at.getTime() ?? Infinity);
    const at = first?.created_at.toISOString() ?? '';
    expect((await balanceOf(app, 'queued_user', at)).balance).toBe(8);
  });

  it('mixed amounts, replays and refusals: every request gets its own answer and the ledger adds up', async () => {
    await grant(app, 'mixed_user', 100);
    const requests = [
      ...Array.from({ length: 30 }, (_, i) => ({ amount: (i % 5) + 1, key: `mixed-${i}` })),
      ...Array.from({ length: 10 }, (_, i) => ({ amount: (i % 5) + 1, key: `mixed-${i}` })), // replays
      { amount: 1000, key: 'mixed-too-much' },
    ];
    const responses = await Promise.all(
      requests.map((r) => debit(app, key, 'mixed_user', { amount: r.amount }, r.key)),
    );
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(30);
    expect(responses.filter((r) => r.statusCode === 200)).toHaveLength(10);
    expect(responses.at(-1)?.statusCode).toBe(402);
    // 30 debits of 1..5 (six times each) = 90 credits
    expect((await balanceOf(app, 'mixed_user')).balance).toBe(10);
    for (const [i, r] of responses.slice(30, 40).entries()) {
      expect(r.json().data.entry).toEqual(responses[i]?.json().data.entry);
    }
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('a debit that fails among concurrent ones fails alone', async () => {
    await grant(app, 'broken_lots', 10);
    // Corrupt the lots so that credits_debit raises once they run out (5 left for a balance of 10).
    await t.pg.query(`update credit_lots set remaining = 5 where user_id = 'broken_lots'`);
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) => debit(app, key, 'broken_lots', { amount: 1 }, `broken-${i}`)),
    );
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(5);
    const failed = responses.filter((r) => r.statusCode === 500);
    expect(failed).toHaveLength(3);
    // 5xx bodies never leak internals.
    for (const r of failed)
      expect(r.json()).toMatchObject({ code: 'internal_error', errors: ['Internal server error'] });
    expect((await entryRows(t.pg, 'broken_lots')).filter((e) => e.type === 'debit')).toHaveLength(5);
  });
});

describe('a debit', () => {
  it('answers 201 with the entry and the balance in the envelope', async () => {
    await grant(app, 'shape_user', 10);
    const res = await debit(
      app,
      key,
      'shape_user',
      { amount: 3, reason: 'image generation', metadata: { job: 'j1' } },
      'shape-1',
    );
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({ isSuccess: true, statusCode: 201, errors: [] });
    expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
    expect(body.data.balance).toBe(7);
    expect(body.data.entry).toMatchObject({
      userId: 'shape_user',
      type: 'debit',
      amount: -3,
      balanceAfter: 7,
      source: 'api',
      purchaseId: null,
      reason: 'image generation',
      idempotencyKey: 'shape-1',
      metadata: { job: 'j1' },
    });
    expect(typeof body.data.entry.id).toBe('string');
    expect(res.headers['idempotent-replayed']).toBeUndefined();
  });

  it('on a user with no account is 402 with balance 0, and creates nothing', async () => {
    const res = await debit(app, key, 'nobody_yet', { amount: 1 });
    expect(res.statusCode).toBe(402);
    expect(res.json().errors).toEqual([
      'Insufficient credits: available 0 (balance 0, 0 of it held), requested 1',
    ]);
    const { rows } = await t.pg.query('select 1 from accounts where user_id = $1', ['nobody_yet']);
    expect(rows).toHaveLength(0);
  });

  it('larger than the balance is 402 naming both numbers, and writes nothing', async () => {
    await grant(app, 'short_user', 3);
    const res = await debit(app, key, 'short_user', { amount: 5 });
    expect(res.statusCode).toBe(402);
    expect(res.json()).toMatchObject({
      code: 'insufficient_credits',
      errors: ['Insufficient credits: available 3 (balance 3, 0 of it held), requested 5'],
    });
    expect((await entryRows(t.pg, 'short_user')).map((r) => r.type)).toEqual(['grant']);
  });

  it('needs the credits:debit scope (or admin)', async () => {
    await grant(app, 'scope_user', 5);
    const readKey = await createApiKey(app, ['balances:read', 'ledger:read']);
    const noScope = await debit(app, readKey, 'scope_user', { amount: 1 });
    expect(noScope.statusCode).toBe(403);
    expect(noScope.json().code).toBe('forbidden');

    const self = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/scope_user/debits',
      headers: { ...asUser('scope_user'), 'idempotency-key': 'self-1' },
      payload: { amount: 1 },
    });
    expect(self.statusCode).toBe(403);

    const noAuth = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/scope_user/debits',
      headers: { 'idempotency-key': 'anon-1' },
      payload: { amount: 1 },
    });
    expect(noAuth.statusCode).toBe(401);

    const admin = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/scope_user/debits',
      headers: { ...asAdmin(), 'idempotency-key': 'admin-1' },
      payload: { amount: 1 },
    });
    expect(admin.statusCode).toBe(201);
    expect((await balanceOf(app, 'scope_user')).balance).toBe(4);
  });
});

describe('idempotency', () => {
  it('a replay with the same key and body answers the first result (200, Idempotent-Replayed) and debits once', async () => {
    await grant(app, 'replay_user', 10);
    const body = { amount: 4, reason: 'export', metadata: { a: 1, b: 'two', c: null } };
    const first = await debit(app, key, 'replay_user', body, 'replay-1');
    expect(first.statusCode).toBe(201);

    // The same body with its keys in another order is the same request.
    const again = await debit(
      app,
      key,
      'replay_user',
      { metadata: { c: null, b: 'two', a: 1 }, reason: 'export', amount: 4 },
      'replay-1',
    );
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toMatchObject({ isSuccess: true, statusCode: 200 });
    expect(again.json().data.entry).toEqual(first.json().data.entry);
    expect(again.json().data.balance).toBe(6);

    expect((await balanceOf(app, 'replay_user')).balance).toBe(6);
    expect((await entryRows(t.pg, 'replay_user')).filter((r) => r.type === 'debit')).toHaveLength(1);
  });

  it('a replay answers the first result even after later debits moved the balance', async () => {
    await grant(app, 'replay_later', 10);
    const first = await debit(app, key, 'replay_later', { amount: 2 }, 'later-1');
    await debit(app, key, 'replay_later', { amount: 5 }, 'later-2');
    const again = await debit(app, key, 'replay_later', { amount: 2 }, 'later-1');
    expect(again.statusCode).toBe(200);
    expect(again.json().data).toEqual(first.json().data);
    expect((await balanceOf(app, 'replay_later')).balance).toBe(3);
  });

  it('the same key with another body is 409 idempotency_key_reused and writes nothing', async () => {
    await grant(app, 'reuse_user', 10);
    expect((await debit(app, key, 'reuse_user', { amount: 2 }, 'reuse-1')).statusCode).toBe(201);
    for (const other of [
      { amount: 3 },
      { amount: 2, reason: 'different' },
      { amount: 2, metadata: { x: 1 } },
    ]) {
      const res = await debit(app, key, 'reuse_user', other, 'reuse-1');
      expectError(res, 409, 'idempotency_key_reused');
    }
    expect((await balanceOf(app, 'reuse_user')).balance).toBe(8);
    expect((await entryRows(t.pg, 'reuse_user')).filter((r) => r.type === 'debit')).toHaveLength(1);
  });

  it('20 concurrent requests with one key write one debit: one 201, nineteen 200 replays', async () => {
    await grant(app, 'same_key_user', 50);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => debit(app, key, 'same_key_user', { amount: 5 }, 'one-key')),
    );
    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(19);
    const ids = new Set(responses.map((r) => r.json().data.entry.id));
    expect(ids.size).toBe(1);
    for (const r of responses.filter((x) => x.statusCode === 200)) {
      expect(r.headers['idempotent-replayed']).toBe('true');
      expect(r.json().data.balance).toBe(45);
    }
    expect((await balanceOf(app, 'same_key_user')).balance).toBe(45);
    expect((await entryRows(t.pg, 'same_key_user')).filter((r) => r.type === 'debit')).toHaveLength(1);
  });

  it('a 402 is not remembered: the same key succeeds once the credits are there', async () => {
    const first = await debit(app, key, 'topup_user', { amount: 5 }, 'topup-1');
    expect(first.statusCode).toBe(402);
    await grant(app, 'topup_user', 5);
    const second = await debit(app, key, 'topup_user', { amount: 5 }, 'topup-1');
    expect(second.statusCode).toBe(201);
    expect(second.json().data.balance).toBe(0);
  });

  it('the Idempotency-Key header is required (1..255 characters)', async () => {
    await grant(app, 'header_user', 10);
    for (const idem of [null, '', 'k'.repeat(256)]) {
      const res = await debit(app, key, 'header_user', { amount: 1 }, idem);
      expectError(res, 400, 'validation_failed');
    }
    expect((await debit(app, key, 'header_user', { amount: 1 }, 'k'.repeat(255))).statusCode).toBe(201);
    expect((await balanceOf(app, 'header_user')).balance).toBe(9);
  });
});

describe('amount validation', () => {
  it.each([
    ['0', 0],
    ['negative', -1],
    ['fractional', 1.5],
    ['a numeric string', '10'],
    ['2^53', 2 ** 53],
    ['null', null],
    ['a boolean', true],
  ])('amount %s is 400 naming the field', async (_label, amount) => {
    await grant(app, 'amount_user', 100, { key: 'amount-user-grant' });
    const res = await debit(app, key, 'amount_user', { amount });
    expectError(res, 400, 'validation_failed');
    expect(res.json().errors.join(' ')).toMatch(/amount/);
    expect((await balanceOf(app, 'amount_user')).balance).toBe(100);
  });

  it('a missing amount, unknown fields and malformed JSON are 400', async () => {
    await grant(app, 'body_user', 10);
    expect((await debit(app, key, 'body_user', {})).statusCode).toBe(400);
    const unknown = await debit(app, key, 'body_user', { amount: 1, userId: 'someone_else' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().errors.join(' ')).toMatch(/userId/);
    const malformed = await app.inject({
      method: 'POST',
      url: '/api/v1/accounts/body_user/debits',
      headers: { 'x-api-key': key, 'idempotency-key': 'bad-json', 'content-type': 'application/json' },
      payload: '{"amount": 1',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe('validation_failed');
    expect((await balanceOf(app, 'body_user')).balance).toBe(10);
  });

  it('2^53-1 passes validation (402 when the balance is short)', async () => {
    await grant(app, 'max_user', 10);
    const res = await debit(app, key, 'max_user', { amount: Number.MAX_SAFE_INTEGER });
    expect(res.statusCode).toBe(402);
    expect(res.json().errors).toEqual([
      `Insufficient credits: available 10 (balance 10, 0 of it held), requested ${Number.MAX_SAFE_INTEGER}`,
    ]);
  });

  it('2^53-1 is debited exactly when the balance holds it', async () => {
    await grant(app, 'rich_user', Number.MAX_SAFE_INTEGER);
    const res = await debit(app, key, 'rich_user', { amount: Number.MAX_SAFE_INTEGER });
    expect(res.statusCode).toBe(201);
    expect(res.json().data.entry.amount).toBe(-Number.MAX_SAFE_INTEGER);
    expect(res.json().data.balance).toBe(0);
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import { buildTestApp, createApiKey, grant, type TestApp, balanceOf } from '../../helpers/app.ts';
import { batchDebits, debit, entryRows, inconsistentAccounts } from './ledger-helpers.ts';

let t: TestApp;
let app: App;
let key: string;

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  key = await createApiKey(app, ['credits:debit']);
});

const metric = async (name: string) => {
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(body)?.[1] ?? 0);
};

describe('POST /debits/batch', () => {
  it('answers each item as its single debit would: new, replayed, 402 and 409 in one batch', async () => {
    await grant(app, 'b_a', 10);
    await grant(app, 'b_b', 3);
    const first = await debit(app, key, 'b_a', { amount: 2, reason: 'earlier' }, 'b-replay');
    expect((await debit(app, key, 'b_a', { amount: 1 }, 'b-used')).statusCode).toBe(201);

    const res = await batchDebits(app, key, [
      { userId: 'b_a', amount: 4, idempotencyKey: 'b-new', metadata: { job: 'x' } },
      { userId: 'b_a', amount: 2, idempotencyKey: 'b-replay', reason: 'earlier' },
      { userId: 'b_b', amount: 5, idempotencyKey: 'b-short' },
      { userId: 'b_a', amount: 9, idempotencyKey: 'b-replay-other' },
      { userId: 'b_a', amount: 3, idempotencyKey: 'b-used', reason: 'another body' },
      { userId: 'b_b', amount: 3, idempotencyKey: 'b-ok' },
      { userId: 'b_nobody', amount: 1, idempotencyKey: 'b-none' },
    ]);
    expect(res.statusCode).toBe(200);
    const items = res.json().data.items;
    expect(
      items.map((i: { index: number; status: number; code: string | null }) => [i.index, i.status, i.code]),
    ).toEqual([
      [0, 201, null],
      [1, 200, null],
      [2, 402, 'insufficient_credits'],
      [3, 402, 'insufficient_credits'],
      [4, 409, 'idempotency_key_reused'],
      [5, 201, null],
      [6, 402, 'insufficient_credits'],
    ]);
    expect(items[0]).toMatchObject({
      entry: { type: 'debit', amount: -4, balanceAfter: 3, idempotencyKey: 'b-new', metadata: { job: 'x' } },
      balance: 3,
      available: 3,
      held: 0,
      error: null,
    });
    // The replay is the first debit's answer, exactly.
    expect(items[1].entry).toEqual(first.json().data.entry);
    expect(items[1].balance).toBe(8);
    expect(items[2]).toMatchObject({
      entry: null,
      error: 'Insufficient credits: available 3 (balance 3, 0 of it held), requested 5',
    });
    expect(items[4].entry).toBeNull();

    // The same items sent one by one now answer what the batch answered.
    const single = await debit(app, key, 'b_a', { amount: 4, metadata: { job: 'x' } }, 'b-new');
    expect(single.statusCode).toBe(200);
    expect(single.json().data.entry).toEqual(items[0].entry);
    expect((await debit(app, key, 'b_a', { amount: 3, reason: 'another body' }, 'b-replay')).statusCode).toBe(
      409,
    );

    expect((await balanceOf(app, 'b_a')).balance).toBe(3);
    expect((await balanceOf(app, 'b_b')).balance).toBe(0);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it('a malformed batch is a 400 naming the item, and nothing is debited', async () => {
    await grant(app, 'b_bad', 10);
    const cases: [unknown[], RegExp][] = [
      [
        [
          { userId: 'b_bad', amount: 1, idempotencyKey: 'k1' },
          { userId: 'b_bad', amount: '2', idempotencyKey: 'k2' },
        ],
        /body\.items\.1\.amount/,
      ],
      [
        [
          { userId: 'b_bad', amount: 1, idempotencyKey: 'k1' },
          { userId: 'b_bad', amount: 1, idempotencyKey: 'k3', extra: 1 },
        ],
        /body\.items\.1/,
      ],
      [
        [
          { userId: 'b_bad', amount: 1, idempotencyKey: 'dup' },
          { userId: 'b_other', amount: 1, idempotencyKey: 'dup' }, // another user: fine
          { userId: 'b_bad', amount: 2, idempotencyKey: 'dup' },
        ],
        /body\.items\.2\.idempotencyKey repeats body\.items\.0/,
      ],
      [[], /body\.items/],
      [
        Array.from({ length: 101 }, (_, i) => ({ userId: 'b_bad', amount: 1, idempotencyKey: `m${i}` })),
        /body\.items/,
      ],
    ];
    for (const [items, message] of cases) {
      const res = await batchDebits(app, key, items);
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('validation_failed');
      expect(res.json().errors.join(' ')).toMatch(message);
    }
    expect((await entryRows(t.pg, 'b_bad')).map((e) => e.type)).toEqual(['grant']);
    const readKey = await createApiKey(app, ['balances:read']);
    const forbidden = await batchDebits(app, readKey, [{ userId: 'b_bad', amount: 1, idempotencyKey: 'x' }]);
    expect(forbidden.statusCode).toBe(403);
  });

  it('a batch of 100 goes as one call, and concurrent batches and debits over shared accounts add up', async () => {
    const users = Array.from({ length: 10 }, (_, i) => `b_many_${i}`);
    for (const u of users) await grant(app, u, 30);
    const calls = await metric('credits_debit_batch_size_count');
    const sum = await metric('credits_debit_batch_size_sum');
    const res = await batchDebits(
      app,
      key,
      Array.from({ length: 100 }, (_, i) => ({
        userId: users[i % 10],
        amount: 1,
        idempotencyKey: `one-${i}`,
      })),
    );
    expect(res.json().data.items.every((i: { status: number }) => i.status === 201)).toBe(true);
    expect(await metric('credits_debit_batch_size_count')).toBe(calls + 1);
    expect(await metric('credits_debit_batch_size_sum')).toBe(sum + 100);

    // Two batches (in opposite user orders) and single debits at once: 20 credits left per user, 300 asked.
    const batch = (tag: string, order: string[]) =>
      batchDebits(
        app,
        key,
        Array.from({ length: 100 }, (_, i) => ({
          userId: order[i % 10],
          amount: 1,
          idempotencyKey: `${tag}-${i}`,
        })),
      );
    const [east, west, ...singles] = await Promise.all([
      batch('east', users),
      batch('west', [...users].reverse()),
      ...Array.from({ length: 100 }, (_, i) => debit(app, key, users[i % 10] as string, { amount: 1 })),
    ]);
    const statuses = [
      ...east!.json().data.items.map((i: { status: number }) => i.status),
      ...west!.json().data.items.map((i: { status: number }) => i.status),
      ...singles.map((r) => r.statusCode),
    ];
    expect(statuses.filter((s) => s === 201)).toHaveLength(200);
    expect(statuses.filter((s) => s === 402)).toHaveLength(100);
    for (const u of users) expect((await balanceOf(app, u)).balance).toBe(0);
    expect(await inconsistentAccounts(app)).toEqual([]);
  });

  it("answers each failed item's error, and a repeated key, in the request's language", async () => {
    await grant(app, 'b_ru', 2);
    const headers = { 'x-api-key': key, 'accept-language': 'ru', 'content-type': 'application/json' };
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/debits/batch',
      headers,
      payload: { items: [{ userId: 'b_ru', amount: 5, idempotencyKey: 'b-ru-short' }] },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-language']).toBe('ru');
    expect(res.json().data.items[0]).toMatchObject({
      status: 402,
      code: 'insufficient_credits',
      error: 'Недостаточно кредитов: доступно 2 (баланс 2, из них 0 в резерве), запрошено 5',
    });
    const repeated = await app.inject({
      method: 'POST',
      url: '/api/v1/debits/batch',
      headers,
      payload: {
        items: [
          { userId: 'b_ru', amount: 1, idempotencyKey: 'b-ru-twice' },
          { userId: 'b_ru', amount: 1, idempotencyKey: 'b-ru-twice' },
        ],
      },
    });
    expect(repeated.statusCode).toBe(400);
    expect(repeated.json().errors).toEqual([
      'body.items.1.idempotencyKey повторяет body.items.0.idempotencyKey для пользователя b_ru',
    ]);
    expect((await balanceOf(app, 'b_ru')).balance).toBe(2);
  });
});

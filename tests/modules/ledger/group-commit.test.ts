import { beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../../src/db/database.ts';
import { AppError } from '../../../src/errors.ts';
import {
  createLedgerService,
  type LedgerServiceOptions,
} from '../../../src/modules/ledger/ledger.service.ts';
import { buildTestApp, cleanup, createApiKey, grant, type TestApp, balanceOf } from '../../helpers/app.ts';
import { debit, entryRows, inconsistentAccounts } from './ledger-helpers.ts';

// Debits beyond the calls in flight wait and leave together: one transaction, one commit for the lot.
// These tests drive the ledger service itself with one or two calls in flight, so which debits share a call is
// certain, and check that sharing one changes nothing a caller can see.
describe('debit group commit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });

  /**
   * A ledger service on the test database, as a replica would have one, recording the size of every call it
   * sends and every batch that failed; `replica()` makes another that records into the same lists.
   */
  function recordingLedger(debitCallsInFlight: number) {
    const calls: number[] = [];
    const batchErrors: unknown[] = [];
    const options: LedgerServiceOptions = {
      debitCallsInFlight,
      onDebitCall: (size) => calls.push(size),
      onDebitBatchError: (err) => batchErrors.push(err),
    };
    const replica = () => {
      const database = createDatabase(t.databaseUrl, 4);
      cleanup(() => database.close());
      return createLedgerService(database.db, database.prepared, options);
    };
    return { ledger: replica(), replica, calls, batchErrors };
  }

  /** ledger:verify's findings among these users (the file shares one database; one test corrupts an account). */
  const inconsistent = async (prefix: string) =>
    (await inconsistentAccounts(t.app)).filter((a) => a.user_id.startsWith(prefix));

  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (err) => (err instanceof AppError ? err.code : 'error'),
    );

  it('debits that wait share one call; each gets its own answer, as if it had gone alone', async () => {
    const { ledger, calls, batchErrors } = recordingLedger(1);
    for (const user of ['gc_a', 'gc_b', 'gc_c']) await grant(t.app, user, 2);
    await ledger.debit({ userId: 'gc_a', amount: 1, idempotencyKey: 'gc-replayed' });
    await new Promise((resolve) => setImmediate(resolve)); // its call has given its slot back

    const debits = [
      { userId: 'gc_first', amount: 1, idempotencyKey: 'gc-0' }, // no account: goes alone, 402
      { userId: 'gc_c', amount: 1, idempotencyKey: 'gc-1' },
      { userId: 'gc_b', amount: 2, idempotencyKey: 'gc-2' },
      { userId: 'gc_a', amount: 1, idempotencyKey: 'gc-replayed' }, // a replay: nothing new
      { userId: 'gc_a', amount: 1, idempotencyKey: 'gc-3' },
      { userId: 'gc_a', amount: 1, idempotencyKey: 'gc-4' }, // gc_a is empty by then: 402
      { userId: 'gc_b', amount: 1, idempotencyKey: 'gc-5' }, // so is gc_b
      { userId: 'gc_c', amount: 5, idempotencyKey: 'gc-1' }, // the key again with another body: 409
    ];
    const results = await Promise.all(debits.map((d) => outcome(ledger.debit(d))));

    expect(calls).toEqual([1, 1, 7]);
    expect(batchErrors).toEqual([]);
    expect(results).toEqual([
      'insufficient_credits',
      'ok',
      'ok',
      'ok',
      'ok',
      'insufficient_credits',
      'insufficient_credits',
      'idempotency_key_reused',
    ]);
    expect((await entryRows(t.pg, 'gc_a')).map((e) => [e.type, e.amount, e.idempotency_key])).toEqual([
      ['grant', 2, expect.any(String)],
      ['debit', -1, 'gc-replayed'],
      ['debit', -1, 'gc-3'],
    ]);
    for (const user of ['gc_a', 'gc_b']) expect((await balanceOf(t.app, user)).balance).toBe(0);
    expect((await balanceOf(t.app, 'gc_c')).balance).toBe(1);
    expect(await inconsistent('gc_')).toEqual([]);
  });

  it('holds, captures and releases share calls with debits; each is answered as if it had gone alone', async () => {
    const { ledger, calls, batchErrors } = recordingLedger(1);
    await grant(t.app, 'gch_a', 10);
    await grant(t.app, 'gch_b', 3);
    await grant(t.app, 'gch_c', 5);
    const hold = (userId: string, amount: number, idempotencyKey: string) =>
      ledger.createHold({ userId, amount, idempotencyKey, expiresInSeconds: 600 });
    const open = await hold('gch_c', 2, 'gch-open');
    const spent = await hold('gch_c', 1, 'gch-spent');
    await ledger.captureHold({ userId: 'gch_c', holdId: spent.hold.id });
    await new Promise((resolve) => setImmediate(resolve));
    calls.length = 0;

    const answer = (p: Promise<{ replayed: boolean }>) =>
      p.then(
        (r) => (r.replayed ? 'replayed' : 'ok'),
        (err) => (err instanceof AppError ? err.code : 'error'),
      );
    const results = await Promise.all([
      outcome(ledger.debit({ userId: 'gch_first', amount: 1, idempotencyKey: 'gch-0' })), // alone: 402
      answer(hold('gch_a', 4, 'gch-1')),
      answer(hold('gch_b', 5, 'gch-2')), // beyond available: 402
      answer(ledger.captureHold({ userId: 'gch_c', holdId: open.hold.id, amount: 1 })),
      answer(ledger.releaseHold('gch_c', spent.hold.id)), // captured already: 409
      answer(ledger.captureHold({ userId: 'gch_c', holdId: spent.hold.id })), // the same capture: a replay
      answer(ledger.debit({ userId: 'gch_a', amount: 7, idempotencyKey: 'gch-3' })), // 6 available after the hold
      answer(hold('gch_a', 4, 'gch-1')), // the same hold again: a replay
      answer(ledger.releaseHold('gch_a', 'hold_missing')),
    ]);

    expect(calls).toEqual([1, 8]);
    expect(batchErrors).toEqual([]);
    expect(results).toEqual([
      'insufficient_credits',
      'ok',
      'insufficient_credits',
      'ok',
      'conflict',
      'replayed',
      'insufficient_credits',
      'replayed',
      'not_found',
    ]);
    expect(await balanceOf(t.app, 'gch_a')).toMatchObject({ balance: 10, held: 4, available: 6 });
    expect(await balanceOf(t.app, 'gch_b')).toMatchObject({ balance: 3, held: 0, available: 3 });
    expect(await balanceOf(t.app, 'gch_c')).toMatchObject({ balance: 3, held: 0, available: 3 });
    expect((await entryRows(t.pg, 'gch_c')).map((e) => [e.type, e.amount])).toEqual([
      ['grant', 5],
      ['debit', -1],
      ['debit', -1],
    ]);
    expect(await inconsistent('gch_')).toEqual([]);
  });

  it("one account's debits keep their arrival order, within a call and across calls", async () => {
    const { ledger, calls } = recordingLedger(2);
    await grant(t.app, 'gc_order', 100);
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        ledger.debit({ userId: 'gc_order', amount: i + 1, idempotencyKey: `order-${i}` }),
      ),
    );
    // A user is in one call at a time: the first debit goes alone, the other 11 wait for it, then leave
    // together (the second slot stays free for other users).
    expect(calls).toEqual([1, 11]);
    const rows = (await entryRows(t.pg, 'gc_order')).filter((e) => e.type === 'debit');
    expect(rows.map((e) => e.idempotency_key)).toEqual(Array.from({ length: 12 }, (_, i) => `order-${i}`));
    expect(rows.map((e) => e.balance_after)).toEqual([99, 97, 94, 90, 85, 79, 72, 64, 55, 45, 34, 22]);
  });

  it('a debit that fails inside a shared call fails alone: the others are retried one by one', async () => {
    const { ledger, calls, batchErrors } = recordingLedger(1);
    for (const user of ['gc_ok1', 'gc_ok2', 'corrupt_gc']) await grant(t.app, user, 10);
    // Corrupt corrupt_gc's lots so that credits_debit raises: 5 left in lots for a balance of 10.
    await t.pg.query(`update credit_lots set remaining = 5 where user_id = 'corrupt_gc'`);
    const results = await Promise.all([
      outcome(ledger.debit({ userId: 'gc_ok1', amount: 1, idempotencyKey: 'b-0' })),
      outcome(ledger.debit({ userId: 'gc_ok1', amount: 2, idempotencyKey: 'b-1' })),
      outcome(ledger.debit({ userId: 'corrupt_gc', amount: 8, idempotencyKey: 'b-2' })),
      outcome(ledger.debit({ userId: 'gc_ok2', amount: 3, idempotencyKey: 'b-3' })),
    ]);
    expect(calls).toEqual([1, 3]);
    expect(batchErrors).toHaveLength(1);
    expect(String(batchErrors[0])).toContain('credit lots of corrupt_gc do not cover the balance');
    expect(results).toEqual(['ok', 'ok', 'error', 'ok']);
    expect((await balanceOf(t.app, 'gc_ok1')).balance).toBe(7);
    expect((await balanceOf(t.app, 'gc_ok2')).balance).toBe(7);
    expect((await balanceOf(t.app, 'corrupt_gc')).balance).toBe(10);
    expect((await entryRows(t.pg, 'corrupt_gc')).map((e) => e.type)).toEqual(['grant']);
  });

  it('two replicas batching debits over the same accounts neither deadlock nor lose a debit', async () => {
    const users = Array.from({ length: 10 }, (_, i) => `gc_shared_${i}`);
    for (const user of users) await grant(t.app, user, 15);
    const { ledger: east, replica, calls, batchErrors } = recordingLedger(2);
    const west = replica();
    // Each replica's batches hold several of the same accounts in opposite arrival orders: locked in
    // arrival order, they would deadlock; credits_ledger_many locks them in user order.
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const n = Math.floor(i / 2) % 10;
        const [ledger, user] = i % 2 === 0 ? [east, users[n]] : [west, users[9 - n]];
        return outcome(ledger.debit({ userId: user as string, amount: 1, idempotencyKey: `shared-${i}` }));
      }),
    );
    expect(batchErrors).toEqual([]);
    expect(Math.max(...calls)).toBeGreaterThan(1);
    expect(results.filter((r) => r === 'ok')).toHaveLength(150);
    expect(results.filter((r) => r === 'insufficient_credits')).toHaveLength(50);
    for (const user of users) expect((await balanceOf(t.app, user)).balance).toBe(0);
    expect(await inconsistent('gc_shared_')).toEqual([]);
  });

  it('through the API: concurrent debits over many accounts share calls, and /metrics counts them', async () => {
    const key = await createApiKey(t.app, ['credits:debit']);
    const users = Array.from({ length: 20 }, (_, i) => `gc_api_${i}`);
    for (const user of users) await grant(t.app, user, 2);
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        debit(t.app, key, users[i % 20] as string, { amount: 1 }, `api-${i}`),
      ),
    );
    expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(40);
    expect(responses.filter((r) => r.statusCode === 402)).toHaveLength(20);
    for (const user of users) expect((await balanceOf(t.app, user)).balance).toBe(0);
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    const count = Number(/^credits_debit_batch_size_count (\d+)/m.exec(metrics)?.[1]);
    const sum = Number(/^credits_debit_batch_size_sum (\d+)/m.exec(metrics)?.[1]);
    expect(sum).toBeGreaterThanOrEqual(60);
    expect(count).toBeLessThan(sum); // some calls carried several debits
  });
});

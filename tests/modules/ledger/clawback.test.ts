import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ClawbackInput } from '../../../src/modules/ledger/ledger.service.ts';
import type { App } from '../../../src/http/types.ts';
import { buildTestApp, createApiKey, type TestApp, balanceOf } from '../../helpers/app.ts';
import { debit, entryRows, inconsistentAccounts, lotRows } from './ledger-helpers.ts';

let t: TestApp;
let app: App;
let key: string;

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  key = await createApiKey(app, ['credits:debit']);
  await t.pg.query(
    `insert into credit_packages (id, name, credits, price, currency) values ('pkg_claw', 'Claw pack', 10, 500, 'usd')`,
  );
});

/** A completed purchase row, as a provider webhook would leave it. */
async function purchase(userId: string, credits: number): Promise<string> {
  const id = `pur_${randomBytes(6).toString('hex')}`;
  await t.pg.query(
    `insert into purchases (id, user_id, package_id, provider, provider_ref, status, credits, price, currency, completed_at)
     values ($1, $2, 'pkg_claw', 'stripe', $1, 'completed', $3, 500, 'usd', now())`,
    [id, userId, credits],
  );
  return id;
}

function grantPurchase(
  userId: string,
  amount: number,
  purchaseId: string | null,
  expiresAt: Date | null = null,
) {
  return app.services.ledger.grant(
    {
      userId,
      amount,
      source: 'stripe',
      purchaseId,
      idempotencyKey: `grant-${randomBytes(6).toString('hex')}`,
      reason: 'purchase',
      expiresAt,
    },
    app.db,
  );
}

function clawback(input: Partial<ClawbackInput> & { userId: string; amount: number }) {
  return app.services.ledger.clawback(
    {
      source: 'stripe',
      purchaseId: null,
      idempotencyKey: `claw-${randomBytes(6).toString('hex')}`,
      reason: 'refund',
      ...input,
    },
    app.db,
  );
}

describe('clawback', () => {
  it('takes only what is left: grant 10, debit 8, clawback 10 takes 2 and records 8 uncollected', async () => {
    const pur = await purchase('cap_user', 10);
    await grantPurchase('cap_user', 10, pur);
    expect((await debit(app, key, 'cap_user', { amount: 8 })).statusCode).toBe(201);

    const result = await clawback({ userId: 'cap_user', amount: 10, purchaseId: pur });
    expect(result.taken).toBe(2);
    expect(result.balance).toBe(0);
    expect(result.replayed).toBe(false);
    expect(result.entry).toMatchObject({
      type: 'reversal',
      amount: -2,
      balanceAfter: 0,
      source: 'stripe',
      purchaseId: pur,
      metadata: { requested: 10, uncollected: 8 },
    });
    expect((await balanceOf(app, 'cap_user')).balance).toBe(0);
    // Nothing can be spent afterwards.
    expect((await debit(app, key, 'cap_user', { amount: 1 })).statusCode).toBe(402);
  });

  it('on an empty balance writes a zero reversal with everything uncollected, never a negative balance', async () => {
    const pur = await purchase('empty_user', 5);
    await grantPurchase('empty_user', 5, pur);
    expect((await debit(app, key, 'empty_user', { amount: 5 })).statusCode).toBe(201);
    const result = await clawback({ userId: 'empty_user', amount: 5, purchaseId: pur });
    expect(result.taken).toBe(0);
    expect(result.entry).toMatchObject({ amount: 0, balanceAfter: 0, metadata: { uncollected: 5 } });
    expect((await balanceOf(app, 'empty_user')).balance).toBe(0);
  });

  it("takes from the named purchase's lots first, then from the others", async () => {
    const older = await purchase('lots_user', 10);
    const refunded = await purchase('lots_user', 6);
    // The other purchase expires sooner, so a debit would spend it first; a clawback must not.
    await grantPurchase('lots_user', 10, older, new Date(Date.now() + 3_600_000));
    await grantPurchase('lots_user', 6, refunded);

    const first = await clawback({ userId: 'lots_user', amount: 4, purchaseId: refunded });
    expect(first.taken).toBe(4);
    expect((await lotRows(t.pg, 'lots_user')).map((l) => [l.purchase_id, l.remaining])).toEqual([
      [older, 10],
      [refunded, 2],
    ]);

    // More than the purchase's lot still holds: the rest comes from the other lot.
    const second = await clawback({ userId: 'lots_user', amount: 5, purchaseId: refunded });
    expect(second.taken).toBe(5);
    expect(second.entry.metadata).toMatchObject({ uncollected: 0 });
    expect((await lotRows(t.pg, 'lots_user')).map((l) => [l.purchase_id, l.remaining])).toEqual([
      [older, 7],
      [refunded, 0],
    ]);
    expect((await balanceOf(app, 'lots_user')).balance).toBe(7);
  });

  it('replays its idempotency key: the second call returns the first entry and takes nothing', async () => {
    const pur = await purchase('idem_user', 10);
    await grantPurchase('idem_user', 10, pur);
    const first = await clawback({
      userId: 'idem_user',
      amount: 3,
      purchaseId: pur,
      idempotencyKey: 'refund-1',
    });
    const again = await clawback({
      userId: 'idem_user',
      amount: 3,
      purchaseId: pur,
      idempotencyKey: 'refund-1',
    });
    expect(again.replayed).toBe(true);
    expect(again.entry).toEqual(first.entry);
    expect(again.taken).toBe(3);
    expect(again.balance).toBe(7);
    expect((await balanceOf(app, 'idem_user')).balance).toBe(7);
    expect((await entryRows(t.pg, 'idem_user')).filter((e) => e.type === 'reversal')).toHaveLength(1);
  });

  it('concurrent clawbacks with one key take once', async () => {
    const pur = await purchase('race_claw', 10);
    await grantPurchase('race_claw', 10, pur);
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        clawback({ userId: 'race_claw', amount: 4, purchaseId: pur, idempotencyKey: 'dispute-1' }),
      ),
    );
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(new Set(results.map((r) => r.entry.id)).size).toBe(1);
    expect((await balanceOf(app, 'race_claw')).balance).toBe(6);
  });

  it('does not spend an expired lot: expired credits are expired, not clawed back', async () => {
    const pur = await purchase('exp_claw', 5);
    await grantPurchase('exp_claw', 3, null);
    await grantPurchase('exp_claw', 5, pur, new Date(Date.now() - 1000)); // already past its expiry
    const result = await clawback({ userId: 'exp_claw', amount: 5, purchaseId: pur });
    expect(result.taken).toBe(3);
    expect(result.entry.metadata).toMatchObject({ uncollected: 2 });
    expect((await entryRows(t.pg, 'exp_claw')).map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 3, 3],
      ['grant', 5, 8],
      ['expiry', -5, 3],
      ['reversal', -3, 0],
    ]);
  });

  it('leaves every account consistent', async () => {
    expect(await inconsistentAccounts(app)).toEqual([]);
  });
});

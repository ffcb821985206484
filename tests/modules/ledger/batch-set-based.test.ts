import { describe, expect, it } from 'vitest';
import { buildTestApp, createApiKey, grant } from '../../helpers/app.ts';
import { batchDebits, debit, inconsistentAccounts, lotRows, reverseDebit } from './ledger-helpers.ts';

// A batch's debits are written set-wise (migrations/021_ledger_many_set_based.sql): these check what that
// must keep from one call per debit: the lots taken in spend order, recorded with the same meaning (lot_id when
// one lot, debit_lots rows when several), and every account consistent.
describe('set-based batch debits', () => {
  it('takes lots in spend order across debits of one account, and records which lots each debit took', async () => {
    const t = await buildTestApp();
    const key = await createApiKey(t.app, ['credits:debit']);
    await grant(t.app, 'set_a', 10); // never expires
    await grant(t.app, 'set_a', 5, { expiresAt: new Date(Date.now() + 86_400_000) }); // spent first
    await grant(t.app, 'set_b', 3);
    const res = await batchDebits(t.app, key, [
      { userId: 'set_a', amount: 4, idempotencyKey: 'sa-1' }, // the expiring lot: 4
      { userId: 'set_b', amount: 5, idempotencyKey: 'sb-1' }, // 402
      { userId: 'set_a', amount: 3, idempotencyKey: 'sa-2' }, // 1 from the expiring lot, 2 from the other
      { userId: 'set_b', amount: 2, idempotencyKey: 'sb-2' },
      { userId: 'set_a', amount: 100, idempotencyKey: 'sa-3' }, // 402: the balance is 8
      { userId: 'set_a', amount: 8, idempotencyKey: 'sa-4' }, // all that is left
    ]);
    const items = res.json().data.items as {
      status: number;
      balance: number | null;
      entry: { id: string };
    }[];
    expect(items.map((i) => [i.status, i.balance])).toEqual([
      [201, 11],
      [402, 3],
      [201, 8],
      [201, 1],
      [402, 8],
      [201, 0],
    ]);
    const [expiring, plain] = [
      (await lotRows(t.pg, 'set_a')).find((l) => l.expires_at)!,
      (await lotRows(t.pg, 'set_a')).find((l) => !l.expires_at)!,
    ];
    expect([expiring.remaining, plain.remaining]).toEqual([0, 0]);
    const taken = async (entryId: string) => {
      const { rows } = await t.pg.query(
        `select e.lot_id::int as lot, (select coalesce(json_agg(json_build_array(d.lot_id::int, d.amount::int)
                 order by d.lot_id), '[]') from debit_lots d where d.user_id = e.user_id and d.entry_id = e.id) as parts
         from ledger_entries e where e.id = $1`,
        [entryId],
      );
      return rows[0];
    };
    expect(await taken(items[0]!.entry.id)).toEqual({ lot: expiring.id, parts: [] });
    expect(await taken(items[2]!.entry.id)).toEqual({
      lot: null,
      parts: [
        [Math.min(expiring.id, plain.id), expiring.id < plain.id ? 1 : 2],
        [Math.max(expiring.id, plain.id), expiring.id < plain.id ? 2 : 1],
      ],
    });
    expect(await taken(items[5]!.entry.id)).toEqual({ lot: plain.id, parts: [] });
    // A reversal gives back to the lots the debit took from: debit_lots written set-wise mean the same.
    const reversed = await reverseDebit(t.app, key, 'set_a', items[2]!.entry.id, {});
    expect(reversed.statusCode).toBe(201);
    expect(reversed.json().data.balance).toBe(3);
    expect(await inconsistentAccounts(t.app)).toEqual([]);

    // The keys replay through the single route, and the entries read back in order, each balance after the last.
    const replay = await debit(t.app, key, 'set_a', { amount: 3 }, 'sa-2');
    expect([replay.statusCode, replay.json().data.balance]).toEqual([200, 8]);
    const { rows } = await t.pg.query(
      `select amount::int, balance_after::int from ledger_entries where user_id = 'set_a' order by created_at, id`,
    );
    let balance = 0;
    for (const r of rows) {
      balance += r.amount;
      expect(r.balance_after).toBe(balance);
    }
  });
});

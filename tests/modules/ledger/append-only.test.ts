import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, grant, type TestApp } from '../../helpers/app.ts';
import { entryRows } from './ledger-helpers.ts';

let t: TestApp;

beforeAll(async () => {
  t = await buildTestApp();
  await grant(t.app, 'ao_user', 10);
});

describe('ledger_entries is append-only in the database', () => {
  it.each([
    ['UPDATE', "update ledger_entries set amount = amount + 1 where user_id = 'ao_user'"],
    ['UPDATE of metadata only', `update ledger_entries set metadata = '{"x":1}' where user_id = 'ao_user'`],
    ['DELETE', "delete from ledger_entries where user_id = 'ao_user'"],
    ['TRUNCATE', 'truncate ledger_entries'],
    ['TRUNCATE ... CASCADE through accounts', 'truncate accounts cascade'],
  ])('%s is rejected', async (_label, statement) => {
    await expect(t.pg.query(statement)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/ledger_entries is append-only/),
    });
    const rows = await entryRows(t.pg, 'ao_user');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ type: 'grant', amount: 10, balance_after: 10 });
  });

  it('an entry that would make a balance negative is refused by the CHECK', async () => {
    await expect(
      t.pg.query(
        `insert into ledger_entries (user_id, type, amount, balance_after, source)
         values ('ao_user', 'debit', -11, -1, 'api')`,
      ),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(
      t.pg.query("update accounts set balance = -1 where user_id = 'ao_user'"),
    ).rejects.toMatchObject({ code: '23514' });
  });
});

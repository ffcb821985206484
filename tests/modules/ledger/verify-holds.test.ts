import { execFile } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import { buildTestApp, createApiKey, grant, type TestApp } from '../../helpers/app.ts';
import { captureHold, createHold, debit, reverseDebit } from './ledger-helpers.ts';

let t: TestApp;
let app: App;
let key: string;

const cli = path.resolve(import.meta.dirname, '../../../src/cli/ledger-verify.ts');

function runVerify(): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli],
      { env: { ...process.env, DATABASE_URL: t.databaseUrl, LOG_LEVEL: 'silent' }, timeout: 30_000 },
      (err, stdout) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout }),
    );
  });
}

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  key = await createApiKey(app, ['credits:debit']);
  // Every new kind of movement: holds active, captured, released; a debit reversed in part.
  for (const u of ['vh_clean', 'vh_lot', 'vh_account', 'vh_reversed']) {
    await grant(app, u, 20);
    await grant(app, u, 5, { expiresAt: new Date(Date.now() + 3_600_000) });
    const active = await createHold(app, key, u, { amount: 6 });
    expect(active.statusCode).toBe(201);
    const captured = await createHold(app, key, u, { amount: 3 });
    expect((await captureHold(app, key, u, captured.json().data.hold.id, { amount: 2 })).statusCode).toBe(
      201,
    );
    const released = await createHold(app, key, u, { amount: 2 });
    await app.inject({
      method: 'POST',
      url: `/api/v1/accounts/${u}/holds/${released.json().data.hold.id}/release`,
      headers: { 'x-api-key': key },
    });
    const d = await debit(app, key, u, { amount: 4 }, `vh-debit-${u}`);
    expect((await reverseDebit(app, key, u, d.json().data.entry.id, { amount: 3 })).statusCode).toBe(201);
  }
});

describe('ledger:verify and holds, reversals', () => {
  it('is clean after holds, captures, releases and reversals', async () => {
    const { code, stdout } = await runVerify();
    expect(stdout).toContain('4 accounts checked, 0 inconsistent');
    expect(code).toBe(0);
  });

  it('reports a lot or an account whose held amount is not what active holds reserve, and an over-reversed debit', async () => {
    await t.pg.query(
      `update credit_lots set held = held - 1
       where user_id = 'vh_lot' and id = (select min(id) from credit_lots where user_id = 'vh_lot' and held > 0)`,
    );
    await t.pg.query(`update accounts set held = held - 1 where user_id = 'vh_account'`);
    // A second reversal written around the function, beyond what the debit left: 1 was left, 2 given back.
    await t.pg.query(
      `insert into ledger_entries (user_id, type, amount, balance_after, source, reverses_entry_id)
       select user_id, 'debit_reversal', 2, (select balance from accounts where user_id = 'vh_reversed') + 2, 'api', id
       from ledger_entries where user_id = 'vh_reversed' and idempotency_key = 'vh-debit-vh_reversed'`,
    );
    const { code, stdout } = await runVerify();
    expect(code).toBe(1);
    expect(stdout).toContain('4 accounts checked, 3 inconsistent');
    const lines = stdout.split('\n').filter((l) => l.startsWith('MISMATCH'));
    expect(lines.find((l) => l.includes('vh_lot'))).toMatch(/lots with a wrong held amount 1/);
    expect(lines.find((l) => l.includes('vh_account'))).toMatch(/held 5, sum of active holds 6/);
    expect(lines.find((l) => l.includes('vh_reversed'))).toMatch(/debits reversed beyond their amount 1/);
    expect(stdout).not.toContain('vh_clean');
  });
});

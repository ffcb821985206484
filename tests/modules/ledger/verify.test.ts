import { execFile } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import { buildTestApp, createApiKey, grant, type TestApp } from '../../helpers/app.ts';
import { debit, lotRows } from './ledger-helpers.ts';

let t: TestApp;
let app: App;

const cli = path.resolve(import.meta.dirname, '../../../src/cli/ledger-verify.ts');

/** Runs `ledger:verify` as operators do: a separate process on the database. */
function runVerify(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli],
      { env: { ...process.env, DATABASE_URL: t.databaseUrl, LOG_LEVEL: 'silent' }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Changes what the append-only trigger protects: only a test (or an attacker with DDL rights) can. */
async function tamper(statement: string, params: unknown[]) {
  const client = await t.pg.connect();
  try {
    await client.query('begin');
    await client.query('alter table ledger_entries disable trigger ledger_entries_no_update_delete');
    await client.query(statement, params);
    await client.query('alter table ledger_entries enable trigger ledger_entries_no_update_delete');
    await client.query('commit');
  } finally {
    client.release();
  }
}

beforeAll(async () => {
  t = await buildTestApp();
  app = t.app;
  const key = await createApiKey(app, ['credits:debit']);
  // A ledger with every kind of entry: grants, debits, an expiry, a clawback.
  for (const u of ['v_clean', 'v_amount', 'v_chain', 'v_lots']) {
    await grant(app, u, 20);
    await grant(app, u, 5, { expiresAt: new Date(Date.now() - 1000) });
    expect((await debit(app, key, u, { amount: 7 })).statusCode).toBe(201);
  }
  await app.services.ledger.clawback(
    {
      userId: 'v_clean',
      amount: 50,
      source: 'stripe',
      purchaseId: null,
      idempotencyKey: 'v-claw',
      reason: 'refund',
    },
    app.db,
  );
});

describe('npm run ledger:verify', () => {
  it('exits 0 on a consistent ledger', async () => {
    const { code, stdout } = await runVerify();
    expect(stdout).toContain('4 accounts checked, 0 inconsistent');
    expect(stdout).not.toContain('MISMATCH');
    expect(code).toBe(0);
  });

  it('exits 1 and names each account whose entries, balance or lots disagree', async () => {
    // The sum of entries no longer matches the cached balance.
    await tamper(`update ledger_entries set amount = amount + 1 where user_id = $1 and type = 'debit'`, [
      'v_amount',
    ]);
    // Sums agree but one balanceAfter does not follow from the entry before it.
    await tamper(
      `update ledger_entries set balance_after = balance_after + 3
       where user_id = $1 and id = (select min(id) from ledger_entries where user_id = $1)`,
      ['v_chain'],
    );
    // credit_lots is not append-only; a lot that holds more than the ledger says is caught too.
    const [lot] = await lotRows(t.pg, 'v_lots');
    await t.pg.query('update credit_lots set remaining = remaining - 1 where id = $1', [lot!.id]);

    const { code, stdout } = await runVerify();
    expect(code).toBe(1);
    expect(stdout).toContain('4 accounts checked, 3 inconsistent');
    const mismatches = stdout.split('\n').filter((l) => l.startsWith('MISMATCH'));
    expect(mismatches).toHaveLength(3);
    expect(mismatches.find((l) => l.includes('v_amount'))).toMatch(
      /cached balance 13, sum of entries 14, sum of lots 13/,
    );
    expect(mismatches.find((l) => l.includes('v_chain'))).toMatch(/balanceAfter breaks [1-9]/);
    expect(mismatches.find((l) => l.includes('v_lots'))).toMatch(/sum of lots 12/);
    expect(stdout).not.toContain('v_clean');
  });
});

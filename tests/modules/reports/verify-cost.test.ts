import { execFile } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, createApiKey, type TestApp } from '../../helpers/app.ts';
import { debit } from '../ledger/ledger-helpers.ts';
import { buy, createPackage } from './history.ts';

let t: TestApp;
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
  const key = await createApiKey(t.app, ['credits:debit']);
  const usd = await createPackage(t.app, 3, 1000, 'usd');
  const eur = await createPackage(t.app, 7, 499, 'eur');
  await buy(t.app, t.pg, { userId: 'c_1', packageId: usd, credits: 3, price: 1000, currency: 'usd' });
  await buy(t.app, t.pg, { userId: 'c_1', packageId: eur, credits: 7, price: 499, currency: 'eur' });
  expect((await debit(t.app, key, 'c_1', { amount: 5 })).statusCode).toBe(201); // from two lots
  expect((await debit(t.app, key, 'c_1', { amount: 1 })).statusCode).toBe(201); // from one
});

describe('ledger:verify at cost', () => {
  it('checks every currency: sold - recognized - breakage - clawed back = deferred cost of what is left', async () => {
    const ok = await runVerify();
    expect(ok.stdout).toContain('2 currencies checked at cost, 0 inconsistent');
    expect(ok.code).toBe(0);
    // A debit that no longer names its lot: its credits left the lot without a dated movement.
    const c = await t.pg.connect();
    try {
      await c.query('begin');
      await c.query('set local session_replication_role = replica');
      await c.query(
        `update ledger_entries set lot_id = null where user_id = 'c_1' and type = 'debit' and lot_id is not null`,
      );
      await c.query('commit');
    } finally {
      c.release();
    }
    const bad = await runVerify();
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/COST MISMATCH eur: .*credits left by the movements 5, in the lots 4/);
    expect(bad.stdout).toContain('2 currencies checked at cost, 1 inconsistent');
  });
});

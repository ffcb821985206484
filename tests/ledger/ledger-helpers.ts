import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { App } from '../../src/types.ts';
import { asAdmin } from '../helpers/app.ts';

/** POST a debit with an API key (x-api-key); `idempotencyKey: null` leaves the header out. */
export function debit(
  app: App,
  apiKey: string,
  userId: string,
  payload: unknown,
  idempotencyKey: string | null = `debit-${randomBytes(8).toString('hex')}`,
) {
  return app.inject({
    method: 'POST',
    url: `/api/v1/accounts/${userId}/debits`,
    headers: {
      'x-api-key': apiKey,
      ...(idempotencyKey === null ? {} : { 'idempotency-key': idempotencyKey }),
    },
    payload: payload as Record<string, unknown>,
  });
}

/** The balance as an admin reads it through the API (`at` for a past time). */
export async function balanceOf(app: App, userId: string, at?: string) {
  const res = await app.inject({
    method: 'GET',
    url: `/api/v1/accounts/${userId}/balance`,
    headers: asAdmin(),
    query: at === undefined ? {} : { at },
  });
  if (res.statusCode !== 200) throw new Error(`balance read failed: ${res.statusCode} ${res.body}`);
  return res.json().data as {
    userId: string;
    balance: number;
    updatedAt: string | null;
    expiringSoon: { credits: number; expiresAt: string }[];
  };
}

export interface EntryRow {
  id: number;
  type: string;
  amount: number;
  balance_after: number;
  purchase_id: string | null;
  idempotency_key: string | null;
  metadata: Record<string, unknown>;
  created_at: Date;
}

/** A user's ledger rows straight from the table, oldest first. */
export async function entryRows(pool: pg.Pool, userId: string): Promise<EntryRow[]> {
  const { rows } = await pool.query(
    `select id::int, type, amount::int, balance_after::int, purchase_id, idempotency_key, metadata, created_at
     from ledger_entries where user_id = $1 order by id`,
    [userId],
  );
  return rows;
}

/** A user's credit lots, oldest first. */
export async function lotRows(pool: pg.Pool, userId: string) {
  const { rows } = await pool.query<{
    id: number;
    purchase_id: string | null;
    amount: number;
    remaining: number;
    expires_at: Date | null;
  }>(
    `select id::int, purchase_id, amount::int, remaining::int, expires_at
     from credit_lots where user_id = $1 order by id`,
    [userId],
  );
  return rows;
}

/** The accounts `ledger:verify` would report for this database. */
export async function inconsistentAccounts(app: App) {
  return app.services.ledger.verify();
}

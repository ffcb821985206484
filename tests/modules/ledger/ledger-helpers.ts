import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { App } from '../../../src/http/types.ts';

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

export interface EntryRow {
  id: number;
  type: string;
  amount: number;
  balance_after: number;
  purchase_id: string | null;
  idempotency_key: string | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  hold_id: string | null;
  reverses_entry_id: number | null;
}

/** A user's ledger rows straight from the table, oldest first. */
export async function entryRows(pool: pg.Pool, userId: string): Promise<EntryRow[]> {
  const { rows } = await pool.query(
    `select id::int, type, amount::int, balance_after::int, purchase_id, idempotency_key, metadata, created_at,
            hold_id, reverses_entry_id::int
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

const post = (app: App, url: string, apiKey: string, payload: unknown, idempotencyKey?: string | null) =>
  app.inject({
    method: 'POST',
    url,
    headers: {
      'x-api-key': apiKey,
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
    },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });

/** POST a hold; a fresh Idempotency-Key unless one is given. */
export function createHold(
  app: App,
  apiKey: string,
  userId: string,
  payload: unknown,
  idempotencyKey: string | null = `hold-${randomBytes(8).toString('hex')}`,
) {
  return post(app, `/api/v1/accounts/${userId}/holds`, apiKey, payload, idempotencyKey);
}

export function captureHold(app: App, apiKey: string, userId: string, holdId: string, payload?: unknown) {
  return post(app, `/api/v1/accounts/${userId}/holds/${holdId}/capture`, apiKey, payload);
}

export function releaseHold(app: App, apiKey: string, userId: string, holdId: string) {
  return post(app, `/api/v1/accounts/${userId}/holds/${holdId}/release`, apiKey, undefined);
}

export function reverseDebit(
  app: App,
  apiKey: string,
  userId: string,
  entryId: string,
  payload?: unknown,
  idempotencyKey: string | null = `rev-${randomBytes(8).toString('hex')}`,
) {
  return post(app, `/api/v1/accounts/${userId}/debits/${entryId}/reversals`, apiKey, payload, idempotencyKey);
}

export function batchDebits(app: App, apiKey: string, items: unknown[]) {
  return post(app, '/api/v1/debits/batch', apiKey, { items });
}

/** A user's holds straight from the table, oldest first. */
export async function holdRows(pool: pg.Pool, userId: string) {
  const { rows } = await pool.query<{ id: string; amount: number; status: string; captured_amount: number }>(
    `select id, amount::int, status, captured_amount::int from holds where user_id = $1 order by seq`,
    [userId],
  );
  return rows;
}

/** A user's held amount on the account and on each lot (oldest lot first). */
export async function heldOf(pool: pg.Pool, userId: string) {
  const account = await pool.query<{ held: number; balance: number }>(
    'select held::int, balance::int from accounts where user_id = $1',
    [userId],
  );
  const lots = await pool.query<{ held: number }>(
    'select held::int from credit_lots where user_id = $1 order by id',
    [userId],
  );
  return { ...account.rows[0], lots: lots.rows.map((l) => l.held) };
}

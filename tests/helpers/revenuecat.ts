import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { App } from '../../src/http/types.ts';
import { asAdmin } from './app.ts';

/** The Authorization value the RevenueCat tests configure (REVENUECAT_WEBHOOK_AUTH). */
export const RC_AUTH = 'Bearer rc-test-webhook-secret';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const fixtures = path.resolve(repoRoot, 'tests/fixtures/revenuecat');

type Fixture = 'rc-non-renewing' | 'rc-cancellation-refund';
export type RcEvent = Record<string, unknown>;
export interface RcBody {
  api_version: string;
  event: RcEvent;
  [field: string]: unknown;
}

/** A sample payload from RevenueCat's docs, with `event` fields overridden; the event id is fresh unless given. */
export function rcBody(fixture: Fixture, event: RcEvent = {}): RcBody {
  const body = JSON.parse(readFileSync(path.join(fixtures, `${fixture}.json`), 'utf8')) as RcBody;
  return { ...body, event: { ...body.event, id: randomUUID(), ...event } };
}

export const unique = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;

/** A NON_RENEWING_PURCHASE of `productId` by `userId` in store transaction `transactionId`. */
export const purchaseEvent = (
  productId: string,
  userId: string,
  transactionId: string,
  event: RcEvent = {},
) =>
  rcBody('rc-non-renewing', {
    product_id: productId,
    app_user_id: userId,
    transaction_id: transactionId,
    original_transaction_id: transactionId,
    ...event,
  });

/** A refund (CANCELLATION with cancel_reason CUSTOMER_SUPPORT) of store transaction `transactionId`. */
export const refundEvent = (productId: string, transactionId: string, event: RcEvent = {}) =>
  rcBody('rc-cancellation-refund', {
    product_id: productId,
    transaction_id: transactionId,
    original_transaction_id: transactionId,
    ...event,
  });

/** POSTs a body to the RevenueCat webhook; `authorization: null` sends none. */
export function deliver(app: App, body: unknown, authorization: string | null = RC_AUTH) {
  return app.inject({
    method: 'POST',
    url: '/webhooks/revenuecat',
    headers: authorization === null ? {} : { authorization },
    payload: body as Record<string, unknown>,
  });
}

/** Creates a package selling `productIds` through the API. */
export async function createRcPackage(
  app: App,
  productIds: string[],
  values: { credits?: number; price?: number; currency?: string; creditExpiryDays?: number } = {},
) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/credit-packages',
    headers: asAdmin(),
    payload: {
      name: 'Coins',
      credits: 100,
      price: 499,
      currency: 'usd',
      ...values,
      revenuecatProductIds: productIds,
    },
  });
  if (res.statusCode !== 201) throw new Error(`package create failed: ${res.body}`);
  return res.json().data as { id: string; credits: number; price: number; currency: string };
}

/** What the database holds for one user and one store transaction. */
export async function rcState(db: pg.Pool, userId: string, transactionId: string) {
  const [account, entries, purchases, events] = await Promise.all([
    db.query('select balance from accounts where user_id = $1', [userId]),
    db.query(
      `select type, amount, balance_after, source, purchase_id, idempotency_key, metadata
         from ledger_entries where user_id = $1 order by id`,
      [userId],
    ),
    db.query(`select * from purchases where provider = 'revenuecat' and provider_ref = $1`, [transactionId]),
    db.query(
      `select event_id, type, status, note, purchase_id from webhook_events
        where provider = 'revenuecat' and payload #>> '{event,transaction_id}' = $1 order by received_at`,
      [transactionId],
    ),
  ]);
  return {
    balance: (account.rows[0]?.balance as number | undefined) ?? 0,
    entries: entries.rows,
    purchases: purchases.rows,
    events: events.rows,
  };
}

/** The stored webhook event of an id. */
export async function storedEvent(db: pg.Pool, eventId: string) {
  const res = await db.query(
    `select event_id, type, status, note, purchase_id, payload from webhook_events
      where provider = 'revenuecat' and event_id = $1`,
    [eventId],
  );
  return res.rows[0];
}

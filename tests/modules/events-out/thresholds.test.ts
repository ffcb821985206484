import { describe, expect, it } from 'vitest';
import { buildTestApp, createApiKey, grant } from '../../helpers/app.ts';
import { debit } from '../ledger/ledger-helpers.ts';
import { fastWebhooks, startReceiver, subscribe, waitFor } from './events-out-helpers.ts';

async function eventsOf(pool: import('pg').Pool, type: string, userId: string) {
  const { rows } = await pool.query(
    `select endpoint_id, (data->>'threshold')::int as threshold, (data->'balance'->>'available')::int as available
     from events where type = $1 and user_id = $2 order by id`,
    [type, userId],
  );
  return rows;
}

describe('balance thresholds', () => {
  it('down, up and down again across a threshold: exactly two balance.low events, each delivered', async () => {
    const t = await buildTestApp(fastWebhooks);
    const key = await createApiKey(t.app, ['credits:debit']);
    const receiver = await startReceiver();
    const low = await subscribe(t.app, receiver, { events: ['balance.low'], lowBalanceThresholds: [50] });
    const other = await subscribe(t.app, receiver, { events: ['*'], lowBalanceThresholds: [20] });
    const unsubscribed = await subscribe(t.app, receiver, {
      events: ['credits.debited'],
      lowBalanceThresholds: [50],
    });
    t.app.services.webhookWorker.start();

    await grant(t.app, 'th_user', 100); // 100
    expect((await debit(t.app, key, 'th_user', { amount: 60 })).statusCode).toBe(201); // 40: crosses 50
    expect((await debit(t.app, key, 'th_user', { amount: 5 })).statusCode).toBe(201); // 35: still below, no event
    await grant(t.app, 'th_user', 10); // 45: below still, not re-armed
    expect((await debit(t.app, key, 'th_user', { amount: 1 })).statusCode).toBe(201); // 44
    await grant(t.app, 'th_user', 6); // 50: back at the threshold: re-armed
    expect((await debit(t.app, key, 'th_user', { amount: 1 })).statusCode).toBe(201); // 49: crosses 50 again
    expect((await debit(t.app, key, 'th_user', { amount: 30 })).statusCode).toBe(201); // 19: crosses 20 (other)

    expect(await eventsOf(t.pg, 'balance.low', 'th_user')).toEqual([
      { endpoint_id: low.id, threshold: 50, available: 40 },
      { endpoint_id: low.id, threshold: 50, available: 49 },
      { endpoint_id: other.id, threshold: 20, available: 19 },
    ]);
    await waitFor(
      () => [...receiver.events.values()].filter((e) => e.type === 'balance.low').length === 3,
      'the balance.low deliveries',
    );
    // Each went to its own endpoint only: the endpoint not subscribed to balance.low got none.
    const lows = receiver.requests.filter((r) => JSON.parse(r.body).type === 'balance.low');
    expect(lows).toHaveLength(3);
    const { rows } = await t.pg.query(
      `select d.endpoint_id, count(*)::int as n from webhook_deliveries d join events e on e.id = d.event_id
       where e.type = 'balance.low' group by d.endpoint_id order by n desc`,
    );
    expect(rows).toEqual([
      { endpoint_id: low.id, n: 2 },
      { endpoint_id: other.id, n: 1 },
    ]);
    expect(rows.some((r) => r.endpoint_id === unsubscribed.id)).toBe(false);
  });

  it('balance.depleted when available reaches 0, once; holds count (available = balance - held)', async () => {
    const t = await buildTestApp(fastWebhooks);
    const key = await createApiKey(t.app, ['credits:debit']);
    const receiver = await startReceiver();
    await subscribe(t.app, receiver, { events: ['*'], lowBalanceThresholds: [30] });

    await grant(t.app, 'dep_user', 40);
    // A hold of 15 leaves 25 available: below 30, though the balance is 40.
    await t.pg.query(`update accounts set held = 15 where user_id = 'dep_user'`);
    expect(await eventsOf(t.pg, 'balance.low', 'dep_user')).toEqual([
      expect.objectContaining({ threshold: 30, available: 25 }),
    ]);
    await t.pg.query(`update accounts set held = 40 where user_id = 'dep_user'`); // all of it held
    await t.pg.query(`update accounts set held = 0 where user_id = 'dep_user'`);
    expect((await debit(t.app, key, 'dep_user', { amount: 40 })).statusCode).toBe(201);
    expect((await debit(t.app, key, 'dep_user', { amount: 1 })).statusCode).toBe(402);

    const { rows } = await t.pg.query(
      `select type, (data->'balance'->>'balance')::int as balance, (data->'balance'->>'available')::int as available,
              (data->'balance'->>'held')::int as held
       from events where user_id = 'dep_user' and type like 'balance.%' order by id`,
    );
    expect(rows).toEqual([
      { type: 'balance.low', balance: 40, available: 25, held: 15 },
      { type: 'balance.depleted', balance: 40, available: 0, held: 40 },
      // held back to 0 re-armed 30; the debit of 40 crossed it again and emptied the account
      { type: 'balance.depleted', balance: 0, available: 0, held: 0 },
      { type: 'balance.low', balance: 0, available: 0, held: 0 },
    ]);
    // The refused debits (402) wrote nothing: no change, no event.
    const { rows: debits } = await t.pg.query(
      `select count(*)::int as n from events where type = 'credits.debited'`,
    );
    expect(debits[0].n).toBe(1);
  });
});

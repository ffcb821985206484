import { describe, expect, it } from 'vitest';
import { pruneEvents } from '../../../src/modules/events-out/events-out.repository.ts';
import { asAdmin, buildTestApp, grant } from '../../helpers/app.ts';
import { startReceiver, subscribe } from './events-out-helpers.ts';

describe('events retention (EVENTS_RETENTION_DAYS)', () => {
  it('removes events and deliveries older than the retention in small batches; the ledger stays whole', async () => {
    const t = await buildTestApp({ EVENTS_RETENTION_DAYS: '30' });
    const receiver = await startReceiver();
    await subscribe(t.app, receiver, { events: ['*'], lowBalanceThresholds: [50] });
    await grant(t.app, 'ret_user', 100);
    for (let i = 0; i < 6; i++) {
      await t.app.services.ledger.debit({ userId: 'ret_user', amount: 10, idempotencyKey: `ret-${i}` });
    }
    // The balance.low row and every delivery become 40 days old; then new ones are written.
    await t.pg.query(`update event_rows set created_at = now() - interval '40 days'`);
    await t.pg.query(
      `update webhook_deliveries set created_at = now() - interval '40 days', status = 'delivered'`,
    );
    await t.app.services.ledger.debit({ userId: 'ret_user', amount: 10, idempotencyKey: 'ret-new' });
    const count = async (sql: string) => (await t.pg.query(sql)).rows[0].n as number;
    const oldDeliveries = await count(
      `select count(*)::int as n from webhook_deliveries where created_at < now() - interval '30 days'`,
    );
    expect(oldDeliveries).toBe(8); // the grant and 6 debits, and the balance.low
    const entries = await count(`select count(*)::int as n from ledger_entries where user_id = 'ret_user'`);

    // Batches of 3: each step removes at most 3 of each.
    expect(await pruneEvents(t.app.db, 30, 3)).toEqual({ deliveries: 3, events: 1 });
    expect(await pruneEvents(t.app.db, 30, 3)).toEqual({ deliveries: 3, events: 0 });
    expect(await pruneEvents(t.app.db, 30, 3)).toEqual({ deliveries: 2, events: 0 });
    expect(await pruneEvents(t.app.db, 30, 3)).toEqual({ deliveries: 0, events: 0 });
    expect(await count(`select count(*)::int as n from webhook_deliveries`)).toBe(1); // the new debit's
    expect(await count(`select count(*)::int as n from event_rows where user_id = 'ret_user'`)).toBe(0);
    // The ledger is never pruned.
    expect(await count(`select count(*)::int as n from ledger_entries where user_id = 'ret_user'`)).toBe(
      entries,
    );

    // The log still reads every credit event from the ledger (none of them is older than the retention).
    const log = async () =>
      (await t.app.inject({ method: 'GET', url: '/api/v1/events?limit=100', headers: asAdmin() })).json().data
        .items as { id: string; type: string }[];
    expect((await log()).filter((e) => e.type === 'credits.debited')).toHaveLength(7);
    const { rows } = await t.pg.query(
      `select id from ledger_entries where user_id = 'ret_user' and idempotency_key = 'ret-new'`,
    );
    const one = await t.app.inject({
      method: 'GET',
      url: `/api/v1/events/evt_${rows[0].id}`,
      headers: asAdmin(),
    });
    expect(one.json().data).toMatchObject({ type: 'credits.debited', data: { entry: { amount: -10 } } });

    // The worker runs the same steps on its own; with nothing old left it removes nothing.
    expect(await t.app.services.webhookWorker.prune()).toEqual({ deliveries: 0, events: 0 });
  });

  it('EVENTS_RETENTION_DAYS must be a whole number of days from 1', async () => {
    await expect(buildTestApp({ EVENTS_RETENTION_DAYS: '0' })).rejects.toThrow(/EVENTS_RETENTION_DAYS/);
    await expect(buildTestApp({ EVENTS_RETENTION_DAYS: 'soon' })).rejects.toThrow(/EVENTS_RETENTION_DAYS/);
  });
});

import { describe, expect, it } from 'vitest';
import { dispatchAndClaim } from '../../../src/modules/events-out/events-out.repository.ts';
import { asAdmin, buildTestApp, grant, type TestApp } from '../../helpers/app.ts';
import { startReceiver, subscribe } from './events-out-helpers.ts';

/** The event types of the user's deliveries, oldest first, with their endpoint. */
const deliveries = async (t: TestApp, userId: string) =>
  (
    await t.pg.query(
      `select d.endpoint_id, e.type from webhook_deliveries d join events e on e.id = d.event_id
       where e.user_id = $1 order by d.id`,
      [userId],
    )
  ).rows.map((r) => [r.endpoint_id, r.type]);

const eventLog = async (t: TestApp) =>
  (await t.app.inject({ method: 'GET', url: '/api/v1/events?limit=100', headers: asAdmin() })).json().data
    .items as { id: string; type: string; data: { entry?: { id: string } } }[];

// Deliveries are written in the transaction of the change, for the endpoints that want its type then
// (migrations/020_events_from_ledger.sql): there is no dispatch stage, and an event nobody wants costs nothing.
describe('event fan-out', () => {
  it('a credit event is read from its ledger entry: no copy, no delivery when no endpoint wants it', async () => {
    const t = await buildTestApp();
    await grant(t.app, 'dispatch_none', 5);
    await t.app.services.ledger.debit({ userId: 'dispatch_none', amount: 2, idempotencyKey: 'none-1' });
    const { rows } = await t.pg.query(
      `select count(*)::int as n from event_rows where type like 'credits.%' and user_id = 'dispatch_none'`,
    );
    expect(rows[0].n).toBe(0);
    expect(await deliveries(t, 'dispatch_none')).toEqual([]);
    // The log has both, with the entry's id as the event's number (evt_<entry id>).
    const { rows: entries } = await t.pg.query(
      `select id::text from ledger_entries where user_id = 'dispatch_none' order by id desc`,
    );
    const log = (await eventLog(t)).filter((e) => entries.some((x) => x.id === e.data.entry?.id));
    expect(log.map((e) => [e.id, e.type])).toEqual([
      [`evt_${entries[0].id}`, 'credits.debited'],
      [`evt_${entries[1].id}`, 'credits.granted'],
    ]);
  });

  it('deliveries are written with the change, only for endpoints that want the type, and claimable at once', async () => {
    const t = await buildTestApp();
    const receiver = await startReceiver();
    const endpoint = await subscribe(t.app, receiver, { events: ['credits.debited'] });
    await grant(t.app, 'dispatch_some', 5);
    await t.app.services.ledger.debit({ userId: 'dispatch_some', amount: 1, idempotencyKey: 'some-1' });
    expect(await deliveries(t, 'dispatch_some')).toEqual([[endpoint.id, 'credits.debited']]);

    const pass = await dispatchAndClaim(t.app.db, { maxEvents: 500, slots: 4, leaseMs: 60_000 });
    expect(pass.claimed.map((d) => [d.endpoint_id, d.event.type, d.attempts])).toEqual([
      [endpoint.id, 'credits.debited', 1],
    ]);
    expect(pass.events).toBe(1);
    expect(pass.more).toBe(false);

    // A disabled endpoint wants nothing; enabled again, it gets the events that happen from then on.
    await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: asAdmin(),
      payload: { disabled: true },
    });
    await t.app.services.ledger.debit({ userId: 'dispatch_some', amount: 1, idempotencyKey: 'some-2' });
    expect(await deliveries(t, 'dispatch_some')).toHaveLength(1);
    await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: asAdmin(),
      payload: { disabled: false, events: ['credits.debited', 'credits.granted'] },
    });
    // The triggers' switch (migrations/030): the entry types some enabled endpoint wants, as a constant.
    const { rows: wanted } = await t.pg.query(`select events_wanted_entry_types() as types`);
    expect(wanted[0].types).toEqual(expect.arrayContaining(['debit', 'grant']));
    expect(wanted[0].types).not.toContain('expiry');
    await t.app.services.ledger.debit({ userId: 'dispatch_some', amount: 1, idempotencyKey: 'some-3' });
    await grant(t.app, 'dispatch_some', 1);
    expect(await deliveries(t, 'dispatch_some')).toEqual([
      [endpoint.id, 'credits.debited'],
      [endpoint.id, 'credits.debited'],
      [endpoint.id, 'credits.granted'],
    ]);
  });

  it('a batch of 100 debits writes one delivery per debit and endpoint, and none once nobody wants them', async () => {
    const t = await buildTestApp();
    const receiver = await startReceiver();
    const a = await subscribe(t.app, receiver, { events: ['credits.debited'] });
    const b = await subscribe(t.app, receiver, { events: ['*'] });
    await grant(t.app, 'dispatch_user', 500);
    const batch = (n: number) =>
      t.app.services.ledger.debitBatch(
        Array.from({ length: 100 }, (_, i) => ({
          userId: 'dispatch_user',
          amount: 1,
          idempotencyKey: `dispatch-${n}-${i}`,
        })),
      );
    expect((await batch(1)).every((r) => r.status === 201)).toBe(true);
    const { rows } = await t.pg.query(
      `select endpoint_id, count(*)::int as n from webhook_deliveries group by endpoint_id order by n`,
    );
    expect(rows).toEqual([
      { endpoint_id: a.id, n: 100 },
      { endpoint_id: b.id, n: 101 }, // and the grant
    ]);
    for (const e of [a, b]) {
      await t.app.inject({ method: 'DELETE', url: `/api/v1/webhook-endpoints/${e.id}`, headers: asAdmin() });
    }
    expect((await batch(2)).every((r) => r.status === 201)).toBe(true);
    const { rows: after } = await t.pg.query(`select count(*)::int as n from webhook_deliveries`);
    expect(after[0].n).toBe(0);
  });
});

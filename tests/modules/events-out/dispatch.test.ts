import { describe, expect, it } from 'vitest';
import { dispatchAndClaim } from '../../../src/modules/events-out/events-out.repository.ts';
import { buildTestApp, grant, type TestApp } from '../../helpers/app.ts';
import { startReceiver, subscribe } from './events-out-helpers.ts';

/** The types of the user's events that wait for the worker, oldest first. */
const undispatched = async (t: TestApp, userId: string) =>
  (
    await t.pg.query(`select type from events where user_id = $1 and dispatched_at is null order by id`, [
      userId,
    ])
  ).rows.map((r) => r.type);

/** 500 debits of 1 (one event each), in batches of 100. */
async function fiveHundredDebits(t: TestApp, userId: string) {
  for (let b = 0; b < 5; b++) {
    const items = Array.from({ length: 100 }, (_, i) => ({
      userId,
      amount: 1,
      idempotencyKey: `${userId}-${b}-${i}`,
    }));
    const results = await t.app.services.ledger.debitBatch(items);
    expect(results.every((r) => r.status === 201)).toBe(true);
  }
}

describe('event dispatch', () => {
  it('an event no endpoint wants is written dispatched; one an endpoint wants waits for the worker', async () => {
    const t = await buildTestApp();
    await grant(t.app, 'dispatch_none', 5);
    // No endpoint at all: nothing for the worker, though the event log has it.
    expect(await undispatched(t, 'dispatch_none')).toEqual([]);
    const { rows } = await t.pg.query(`select type from events where user_id = 'dispatch_none'`);
    expect(rows.map((r) => r.type)).toEqual(['credits.granted']);

    const receiver = await startReceiver();
    await subscribe(t.app, receiver, { events: ['credits.debited'] });
    await grant(t.app, 'dispatch_some', 5);
    await t.app.services.ledger.debit({ userId: 'dispatch_some', amount: 1, idempotencyKey: 'some-1' });
    expect(await undispatched(t, 'dispatch_some')).toEqual(['credits.debited']);

    // A disabled endpoint wants nothing.
    await t.pg.query(`update webhook_endpoints set disabled = true`);
    await t.app.services.ledger.debit({ userId: 'dispatch_some', amount: 1, idempotencyKey: 'some-2' });
    expect(await undispatched(t, 'dispatch_some')).toEqual(['credits.debited']);
  });

  it('events that became unwanted after they were written do not wait for attempt slots: one pass marks them', async () => {
    const t = await buildTestApp();
    const receiver = await startReceiver();
    const endpoint = await subscribe(t.app, receiver, { events: ['credits.granted', 'credits.debited'] });
    await grant(t.app, 'dispatch_user', 500);
    await fiveHundredDebits(t, 'dispatch_user');
    expect(await undispatched(t, 'dispatch_user')).toHaveLength(501);
    // The endpoint stops wanting the debits: 500 events now wait for nobody, behind the one it still wants.
    await t.pg.query(`update webhook_endpoints set events = '{credits.granted}'`);

    // One free slot: the wanted event is claimed for it, and every unwanted one is marked in the same pass.
    const pass = await dispatchAndClaim(t.app.db, { maxEvents: 500, slots: 1, leaseMs: 60_000 });
    expect(pass.claimed.map((d) => [d.endpoint_id, d.event.type])).toEqual([
      [endpoint.id, 'credits.granted'],
    ]);
    expect(pass.events).toBe(501);
    expect(pass.more).toBe(true); // it used every slot: the worker goes on at once
    expect(await undispatched(t, 'dispatch_user')).toEqual([]);
    const { rows } = await t.pg.query(`select count(*)::int as n from webhook_deliveries`);
    expect(rows[0].n).toBe(1);
  });

  it('with no free slot, wanted events wait while unwanted ones are still marked', async () => {
    const t = await buildTestApp();
    const receiver = await startReceiver();
    await subscribe(t.app, receiver, { events: ['credits.granted', 'credits.debited'] });
    await grant(t.app, 'dispatch_busy', 5);
    await t.app.services.ledger.debit({ userId: 'dispatch_busy', amount: 1, idempotencyKey: 'busy-1' });
    await t.pg.query(`update webhook_endpoints set events = '{credits.debited}'`);

    const pass = await dispatchAndClaim(t.app.db, { maxEvents: 500, slots: 0, leaseMs: 60_000 });
    expect(pass.claimed).toEqual([]);
    expect(pass.events).toBe(1);
    expect(pass.more).toBe(false); // no limit reached: the worker waits for its next poll
    expect(await undispatched(t, 'dispatch_busy')).toEqual(['credits.debited']);
  });
});

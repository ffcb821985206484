import { describe, expect, it } from 'vitest';
import { dispatchAndClaim } from '../../src/db/webhooks.repository.ts';
import { buildTestApp, grant } from '../helpers/app.ts';
import { startReceiver, subscribe } from './webhook-helpers.ts';

describe('event dispatch', () => {
  it('events no endpoint wants do not wait for attempt slots: one pass marks them all', async () => {
    const t = await buildTestApp();
    const receiver = await startReceiver();
    const endpoint = await subscribe(t.app, receiver, { events: ['credits.granted'] });
    await grant(t.app, 'dispatch_user', 1_000);
    // 1,000 credits.debited events that no endpoint wants, written after the one it wants.
    for (let b = 0; b < 10; b++) {
      const items = Array.from({ length: 100 }, (_, i) => ({
        userId: 'dispatch_user',
        amount: 1,
        idempotencyKey: `dispatch-${b}-${i}`,
      }));
      const results = await t.app.services.ledger.debitBatch(items);
      expect(results.every((r) => r.status === 201)).toBe(true);
    }
    const undispatched = async () =>
      (await t.pg.query(`select type from events where dispatched_at is null order by id`)).rows.map(
        (r) => r.type,
      );
    expect((await undispatched()).filter((type) => type === 'credits.debited')).toHaveLength(1_000);

    // One free slot: the wanted event is claimed for it, and every unwanted one is marked in the same pass.
    const pass = await dispatchAndClaim(t.app.db, { maxEvents: 500, slots: 1, leaseMs: 60_000 });
    expect(pass.claimed.map((d) => [d.endpoint_id, d.event.type])).toEqual([
      [endpoint.id, 'credits.granted'],
    ]);
    expect(await undispatched()).toEqual([]);
    expect(pass.events).toBeGreaterThanOrEqual(1_001);
    const { rows } = await t.pg.query(`select count(*)::int as n from webhook_deliveries`);
    expect(rows[0].n).toBe(1);
  });

  it('with no free slot, wanted events wait undispatched while unwanted ones are still marked', async () => {
    const t = await buildTestApp();
    const receiver = await startReceiver();
    await subscribe(t.app, receiver, { events: ['credits.debited'] });
    await grant(t.app, 'dispatch_busy', 5);
    await t.app.services.ledger.debit({ userId: 'dispatch_busy', amount: 1, idempotencyKey: 'busy-1' });

    const pass = await dispatchAndClaim(t.app.db, { maxEvents: 500, slots: 0, leaseMs: 60_000 });
    expect(pass.claimed).toEqual([]);
    const { rows } = await t.pg.query(
      `select type, dispatched_at is not null as dispatched from events where user_id = 'dispatch_busy' order by id`,
    );
    expect(rows).toEqual([
      { type: 'credits.granted', dispatched: true },
      { type: 'credits.debited', dispatched: false },
    ]);
  });
});

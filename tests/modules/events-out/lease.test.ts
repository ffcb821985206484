import { describe, expect, it } from 'vitest';
import { dispatchAndClaim, recordAttempts } from '../../../src/modules/events-out/events-out.repository.ts';
import { buildTestApp, grant } from '../../helpers/app.ts';
import { deliveriesOf, fastWebhooks, startReceiver, subscribe, waitFor } from './events-out-helpers.ts';

describe('delivery leases', () => {
  it('a delivery claimed by a replica that died is sent again only when its lease ends; its late result is ignored', async () => {
    const t = await buildTestApp(fastWebhooks);
    const receiver = await startReceiver();
    const endpoint = await subscribe(t.app, receiver, { events: ['credits.granted'] });
    await grant(t.app, 'lease_user', 1);
    // A replica dispatches the event, claiming its first attempt for 3 s, and "dies" before sending it.
    // The clock starts before the claim, so a slow machine cannot make the lease look shorter than it is, and
    // the lease is long enough that the check half a second in cannot land after it.
    const started = Date.now();
    const dispatched = await dispatchAndClaim(t.app.db, { maxEvents: 100, slots: 4, leaseMs: 3000 });
    expect(dispatched.events).toBe(1);
    expect(dispatched.claimed).toEqual([expect.objectContaining({ attempts: 1, endpoint_id: endpoint.id })]);
    t.app.services.webhookWorker.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.requests).toHaveLength(0); // leased: no other replica sends it meanwhile

    await waitFor(() => receiver.events.size === 1, 'the delivery after the lease');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
    await waitFor(
      async () => (await deliveriesOf(t.app, endpoint.id))[0]?.status === 'delivered',
      'recorded',
    );
    const [delivery] = await deliveriesOf(t.app, endpoint.id);
    expect(delivery).toMatchObject({ attempts: 2, status: 'delivered', lastStatusCode: 204 });

    // The dead replica's result for attempt 1 arrives late: it changes nothing.
    const { rows } = await t.pg.query(`select id from webhook_deliveries`);
    await recordAttempts(t.app.db, [
      { id: rows[0].id, attempts: 1, delivered: false, statusCode: 500, error: 'HTTP 500', retryInMs: 10 },
    ]);
    expect((await deliveriesOf(t.app, endpoint.id))[0]).toMatchObject({ attempts: 2, status: 'delivered' });
  });
});

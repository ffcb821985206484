import { describe, expect, it } from 'vitest';
import { dispatchEvents, recordAttempts } from '../../src/db/webhooks.repository.ts';
import { buildTestApp, grant } from '../helpers/app.ts';
import { deliveriesOf, fastWebhooks, startReceiver, subscribe, waitFor } from './webhook-helpers.ts';

describe('delivery leases', () => {
  it('a delivery claimed by a replica that died is sent again only when its lease ends; its late result is ignored', async () => {
    const t = await buildTestApp(fastWebhooks);
    const receiver = await startReceiver();
    const endpoint = await subscribe(t.app, receiver, { events: ['credits.granted'] });
    await grant(t.app, 'lease_user', 1);
    // The delivery is created, then claimed the way a replica does, and that replica "dies": attempt 1 holds
    // a lease of 1.5 s.
    expect(await dispatchEvents(t.app.db, 100)).toBe(1);
    await t.pg.query(
      `update webhook_deliveries set attempts = 1, last_attempt_at = now(),
         lease_until = now() + interval '1.5 seconds', next_attempt_at = now() + interval '1.5 seconds'`,
    );
    const started = Date.now();
    t.app.services.webhookWorker.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.requests).toHaveLength(0); // leased: no other replica sends it meanwhile

    await waitFor(() => receiver.events.size === 1, 'the delivery after the lease');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
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

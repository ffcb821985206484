import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { asAdmin, buildTestApp, cleanup, grant } from '../../helpers/app.ts';
import { deliveriesOf, fastWebhooks, startReceiver, subscribe, waitFor } from './events-out-helpers.ts';

describe('webhook delivery: retries, failures, manual retry', () => {
  it('a receiver down for the first 3 attempts still gets the event, on the 4th', async () => {
    const t = await buildTestApp(fastWebhooks);
    const receiver = await startReceiver();
    receiver.respond = (_event, attempt) => (attempt <= 3 ? 503 : 200);
    const endpoint = await subscribe(t.app, receiver, { events: ['credits.granted'] });
    t.app.services.webhookWorker.start();

    await grant(t.app, 'retry_user', 10);
    await waitFor(() => receiver.events.size === 1, 'the event after 3 failed attempts');
    await waitFor(
      async () => (await deliveriesOf(t.app, endpoint.id))[0]?.status === 'delivered',
      'the delivery to be recorded',
    );
    expect(receiver.requests.map((r) => r.status)).toEqual([503, 503, 503, 200]);
    // Each attempt is signed again with its own timestamp, under the same webhook-id.
    expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(await deliveriesOf(t.app, endpoint.id)).toEqual([
      expect.objectContaining({
        eventType: 'credits.granted',
        status: 'delivered',
        attempts: 4,
        lastStatusCode: 200,
        lastError: null,
        nextAttemptAt: null,
      }),
    ]);
  });

  it('a receiver that never answers 2xx: retried per the schedule, then failed; a manual retry delivers it', async () => {
    const t = await buildTestApp({ ...fastWebhooks, WEBHOOK_RETRY_SCHEDULE: '10ms,10ms' });
    const receiver = await startReceiver();
    let up = false;
    receiver.respond = () => (up ? 200 : 500);
    const endpoint = await subscribe(t.app, receiver, { events: ['credits.granted'] });
    t.app.services.webhookWorker.start();
    await grant(t.app, 'failing_user', 10);

    await waitFor(async () => (await deliveriesOf(t.app, endpoint.id))[0]?.status === 'failed', 'failed');
    const [failed] = await deliveriesOf(t.app, endpoint.id);
    expect(failed).toMatchObject({
      attempts: 3,
      lastStatusCode: 500,
      lastError: 'HTTP 500',
      nextAttemptAt: null,
    });
    expect(receiver.requests).toHaveLength(3);
    const failedOnly = await deliveriesOf(t.app, endpoint.id, '&status=failed');
    expect(failedOnly).toHaveLength(1);
    expect(await deliveriesOf(t.app, endpoint.id, '&status=delivered')).toHaveLength(0);

    up = true;
    const retry = await t.app.inject({
      method: 'POST',
      url: `/api/v1/webhook-endpoints/${endpoint.id}/deliveries/${failed?.id}/retry`,
      headers: asAdmin(),
    });
    expect(retry.statusCode).toBe(202);
    expect(retry.json().data).toMatchObject({ id: failed?.id, status: 'pending' });
    await waitFor(
      async () => (await deliveriesOf(t.app, endpoint.id))[0]?.status === 'delivered',
      'delivered',
    );
    expect(receiver.events.size).toBe(1);

    const unknown = await t.app.inject({
      method: 'POST',
      url: `/api/v1/webhook-endpoints/${endpoint.id}/deliveries/dlv_999999/retry`,
      headers: asAdmin(),
    });
    expect(unknown.statusCode).toBe(404);
  });

  it('an answer that takes longer than WEBHOOK_TIMEOUT_MS is a failed attempt; a redirect is not followed', async () => {
    const t = await buildTestApp({
      ...fastWebhooks,
      WEBHOOK_TIMEOUT_MS: '300',
      WEBHOOK_RETRY_SCHEDULE: '10ms',
    });
    let hits = 0;
    const slow = createServer((req, res) => {
      hits++;
      if (req.url === '/redirect') {
        res.writeHead(307, { location: '/slow' }).end();
        return;
      }
      setTimeout(() => res.writeHead(200).end(), 1500).unref();
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    cleanup(async () => {
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    });
    const port = (slow.address() as AddressInfo).port;
    const create = async (path: string) => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/webhook-endpoints',
        headers: asAdmin(),
        payload: { url: `http://127.0.0.1:${port}${path}`, events: ['credits.granted'] },
      });
      return res.json().data.id as string;
    };
    const slowId = await create('/slow');
    const redirectId = await create('/redirect');
    t.app.services.webhookWorker.start();
    await grant(t.app, 'slow_user', 10);

    await waitFor(
      async () =>
        (await deliveriesOf(t.app, slowId))[0]?.status === 'failed' &&
        (await deliveriesOf(t.app, redirectId))[0]?.status === 'failed',
      'both to fail',
    );
    expect((await deliveriesOf(t.app, slowId))[0]).toMatchObject({
      attempts: 2,
      lastStatusCode: null,
      lastError: 'no response within 300 ms',
    });
    expect((await deliveriesOf(t.app, redirectId))[0]).toMatchObject({ attempts: 2, lastStatusCode: 307 });
    expect(hits).toBe(4); // 2 attempts each; the redirect's target was never asked
  });

  it('a disabled endpoint gets nothing; deleting an endpoint keeps the event log', async () => {
    const t = await buildTestApp(fastWebhooks);
    const receiver = await startReceiver();
    const endpoint = await subscribe(t.app, receiver, { events: ['*'] });
    const patch = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: asAdmin(),
      payload: { disabled: true },
    });
    expect(patch.statusCode).toBe(200);
    expect(patch.json().data.disabled).toBe(true);
    await grant(t.app, 'quiet_user', 10);
    await t.app.services.webhookWorker.runOnce();
    await t.app.services.webhookWorker.runOnce();
    expect(receiver.requests).toHaveLength(0);
    expect(await deliveriesOf(t.app, endpoint.id)).toHaveLength(0);

    const del = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/webhook-endpoints/${endpoint.id}`,
      headers: asAdmin(),
    });
    expect(del.statusCode).toBe(200);
    const events = await t.app.inject({ method: 'GET', url: '/api/v1/events', headers: asAdmin() });
    expect(events.json().data.items.map((e: { type: string }) => e.type)).toEqual(['credits.granted']);
  });
});

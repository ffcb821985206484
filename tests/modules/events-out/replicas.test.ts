import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../../helpers/app.ts';
import { fastWebhooks, startReceiver, subscribe, waitFor } from './events-out-helpers.ts';

describe('webhook delivery with two replicas', () => {
  it('two app instances on one database deliver a burst of 500 events, none sent twice at once', async () => {
    const env = {
      ...fastWebhooks,
      WEBHOOK_CONCURRENCY: '8',
      WEBHOOK_RETRY_SCHEDULE: '30ms,30ms,30ms,30ms,30ms',
    };
    const a = await buildTestApp(env);
    const b = await buildTestApp(env, a.databaseUrl);
    const receiver = await startReceiver();
    // Slow answers widen the window in which a second send of one delivery would overlap the first; one
    // answer in five is a 500 on the first attempt, so retries are claimed by either replica too.
    receiver.respond = async (event, attempt) => {
      await new Promise((r) => setTimeout(r, 5));
      return attempt === 1 && Number(event.id.slice(4)) % 5 === 0 ? 500 : 200;
    };
    await subscribe(a.app, receiver, { events: ['credits.granted'] });

    // 500 grants, 50 at a time: 500 events committed as a burst.
    for (let i = 0; i < 10; i++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          a.pg.query(`select credits_grant($1, 1, 'dev', null, $2, 'burst', '{}', null)`, [
            `burst_${(i * 50 + j) % 40}`,
            `burst-${i}-${j}`,
          ]),
        ),
      );
    }
    a.app.services.webhookWorker.start();
    b.app.services.webhookWorker.start();

    await waitFor(() => receiver.events.size === 500, '500 events delivered', 60_000);
    await waitFor(async () => {
      const { rows } = await a.pg.query(
        `select count(*)::int as n from webhook_deliveries where status = 'delivered'`,
      );
      return rows[0].n === 500;
    }, 'every delivery recorded');
    await a.app.services.webhookWorker.stop();
    await b.app.services.webhookWorker.stop();

    expect(receiver.maxConcurrentPerId).toBe(1);
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
    // 100 events failed their first attempt: 600 sends, and none more (no delivery sent twice).
    expect(receiver.requests).toHaveLength(600);
    const { rows } = await a.pg.query(
      `select attempts, count(*)::int as n from webhook_deliveries group by attempts order by attempts`,
    );
    expect(rows).toEqual([
      { attempts: 1, n: 400 },
      { attempts: 2, n: 100 },
    ]);
  }, 90_000);
});

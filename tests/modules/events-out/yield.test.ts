import { describe, expect, it } from 'vitest';
import { createDeliveryWorker } from '../../../src/modules/events-out/delivery-worker.ts';
import { buildTestApp, grant } from '../../helpers/app.ts';
import { startReceiver, subscribe, waitFor } from './events-out-helpers.ts';

// Webhooks are asynchronous, debits are not: while spending operations queue for the database (the ledger's
// group commit has every call busy), the worker sends at most a quarter of its slots at once; the backlog
// waits in the table and goes at full width once the queue is empty.
describe('the delivery worker yields to queued debits', () => {
  it('a quarter of its slots while debits wait for the database, all of them once they do not', async () => {
    const t = await buildTestApp();
    const receiver = await startReceiver();
    let open = 0;
    let widest = 0;
    receiver.respond = async () => {
      open++;
      widest = Math.max(widest, open);
      await new Promise((r) => setTimeout(r, 150));
      open--;
      return 204;
    };
    await subscribe(t.app, receiver, { events: ['credits.granted'] });
    for (let i = 0; i < 24; i++) await grant(t.app, `yield_${i}`, 1);

    let debitsWaiting = 3;
    const worker = createDeliveryWorker(t.app.db, {
      pollIntervalMs: 20,
      retryScheduleMs: [50],
      timeoutMs: 5_000,
      concurrency: 8,
      allowPrivateUrls: true,
      httpsOnly: false,
      log: t.app.log,
      spendingBacklog: () => debitsWaiting,
    });
    worker.start();
    try {
      await waitFor(() => receiver.events.size >= 4, 'deliveries while debits wait');
      expect(widest).toBeLessThanOrEqual(2); // ceil(8 / 4)
      debitsWaiting = 0;
      await waitFor(() => receiver.events.size === 24, 'the rest, once nothing waits');
      expect(widest).toBeGreaterThan(2);
    } finally {
      await worker.stop();
    }
  });
});

import { describe, expect, it } from 'vitest';
import type { App } from '../../../src/http/types.ts';
import { createDeliveryWorker } from '../../../src/modules/events-out/delivery-worker.ts';
import { buildTestApp, grant } from '../../helpers/app.ts';
import { type Receiver, startReceiver, subscribe, waitFor } from './events-out-helpers.ts';

/** Holds every request until `release()`; counts how many were open at once, at most. */
function gate(receiver: Receiver) {
  let open = 0;
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const seen = { widest: 0, release };
  receiver.respond = async () => {
    open++;
    seen.widest = Math.max(seen.widest, open);
    await released;
    open--;
    return 204;
  };
  return seen;
}

/** A worker polling every 20 ms with `concurrency` slots, `endpointConcurrency` of them per endpoint. */
function fastWorker(app: App, concurrency: number, endpointConcurrency: number) {
  return createDeliveryWorker(app.db, {
    pollIntervalMs: 20,
    retryScheduleMs: [50],
    timeoutMs: 10_000,
    concurrency,
    endpointConcurrency,
    allowPrivateUrls: true,
    httpsOnly: false,
    log: app.log,
  });
}

// WEBHOOK_ENDPOINT_CONCURRENCY: one endpoint gets at most its share of a replica's attempts at once, so a
// stuck endpoint with a backlog neither takes every slot nor holds up another endpoint's deliveries.
describe('the per-endpoint cap of the delivery worker', () => {
  it("a stuck endpoint's backlog takes only its share; a later endpoint's deliveries go meanwhile", async () => {
    const t = await buildTestApp();
    const stuck = await startReceiver();
    const other = await startReceiver();
    const stuckGate = gate(stuck);
    // The stuck endpoint's 10 deliveries are due first: without the cap they would fill every slot.
    await subscribe(t.app, stuck, { events: ['credits.granted'] });
    for (let i = 0; i < 10; i++) await grant(t.app, `cap_a_${i}`, 1);
    await subscribe(t.app, other, { events: ['credits.granted'] });
    for (let i = 0; i < 4; i++) await grant(t.app, `cap_b_${i}`, 1);

    const worker = fastWorker(t.app, 4, 2);
    worker.start();
    try {
      await waitFor(() => other.events.size === 4, "the other endpoint's deliveries while one is stuck");
      await waitFor(() => stuckGate.widest === 2, 'two requests open at the stuck endpoint');
      await new Promise((r) => setTimeout(r, 200));
      expect(stuckGate.widest).toBe(2);
      expect(stuck.events.size).toBe(0);
      stuckGate.release();
      // It wants every grant: its own 10 and the other's 4.
      await waitFor(() => stuck.events.size === 14, "the stuck endpoint's backlog once it answers");
      expect(stuckGate.widest).toBe(2);
    } finally {
      stuckGate.release();
      await worker.stop();
    }
  });

  it('an endpoint alone still gets its whole share at once', async () => {
    const t = await buildTestApp();
    const receiver = await startReceiver();
    const seen = gate(receiver);
    await subscribe(t.app, receiver, { events: ['credits.granted'] });
    for (let i = 0; i < 12; i++) await grant(t.app, `cap_c_${i}`, 1);
    const worker = fastWorker(t.app, 8, 5);
    worker.start();
    try {
      await waitFor(() => seen.widest === 5, 'five requests open at once');
      await new Promise((r) => setTimeout(r, 200));
      expect(seen.widest).toBe(5);
      seen.release();
      await waitFor(() => receiver.events.size === 12, 'all twelve');
    } finally {
      seen.release();
      await worker.stop();
    }
  });
});

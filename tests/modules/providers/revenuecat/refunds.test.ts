import type { Pool } from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../../src/http/types.ts';
import { buildTestApp, type TestApp } from '../../../helpers/app.ts';
import {
  createRcPackage,
  deliver,
  purchaseEvent,
  RC_AUTH,
  refundEvent,
  rcState,
  storedEvent,
  unique,
} from '../../../helpers/revenuecat.ts';

const env = { REVENUECAT_WEBHOOK_AUTH: RC_AUTH };

// One app and database for the file; every test uses its own products, users and transactions.
let t: TestApp;
let app: App;
let pg: Pool;

beforeAll(async () => {
  t = await buildTestApp(env);
  app = t.app;
  pg = t.pg;
});

/** A package of `credits` and one purchase of it, granted through the webhook. */
async function bought(app: App, credits: number) {
  const product = unique('prod');
  await createRcPackage(app, [product], { credits });
  const [user, tx] = [unique('user'), unique('tx')];
  const res = await deliver(app, purchaseEvent(product, user, tx));
  expect(res.json().data.outcome).toBe('processed');
  return { product, user, tx, purchaseId: res.json().data.purchaseId as string };
}

const spend = (app: App, userId: string, amount: number) =>
  app.services.ledger.debit({ userId, amount, idempotencyKey: unique('spend') });

describe('RevenueCat refunds claw back once; reversals grant back', () => {
  it('a refund (the docs sample: CANCELLATION, CUSTOMER_SUPPORT) claws back once, even delivered twice', async () => {
    const { product, user, tx, purchaseId } = await bought(app, 100);
    const body = refundEvent(product, tx);

    const first = await deliver(app, body);
    expect(first.statusCode).toBe(200);
    expect(first.json().data).toMatchObject({ outcome: 'processed', purchaseId, type: 'CANCELLATION' });
    const again = await deliver(app, body);
    expect(again.statusCode).toBe(200);
    expect(again.json().data.outcome).toBe('duplicate');
    // the same refund under a new event id
    const other = await deliver(app, refundEvent(product, tx));
    expect(other.statusCode).toBe(200);
    expect(other.json().data).toMatchObject({ outcome: 'ignored', note: 'purchase already refunded' });

    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(0);
    expect(state.entries).toHaveLength(2);
    expect(state.entries[1]).toMatchObject({
      type: 'reversal',
      amount: -100,
      balance_after: 0,
      source: 'revenuecat',
      purchase_id: purchaseId,
      idempotency_key: `revenuecat:refund:${tx}`,
    });
    expect(state.entries[1].metadata).toMatchObject({
      requested: 100,
      uncollected: 0,
      eventId: body.event.id,
    });
    expect(state.purchases[0]).toMatchObject({ status: 'refunded', credits_reversed: 100 });
    expect(state.events.map((e) => e.status)).toEqual(['processed', 'processed', 'ignored']);
    expect(await app.services.ledger.verify()).toEqual([]);
  });

  it('concurrent deliveries of a refund (same and different event ids) claw back once', async () => {
    const { product, user, tx } = await bought(app, 40);
    const same = refundEvent(product, tx);
    const bodies = [same, same, same, ...Array.from({ length: 5 }, () => refundEvent(product, tx))];

    const responses = await Promise.all(bodies.map((b) => deliver(app, b)));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(bodies.length).fill(200));
    const outcomes = responses.map((r) => r.json().data.outcome);
    expect(outcomes.filter((o) => o === 'processed')).toHaveLength(1);

    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(0);
    expect(state.entries.filter((e) => e.type === 'reversal')).toHaveLength(1);
    expect(state.purchases[0]).toMatchObject({ status: 'refunded', credits_reversed: 40 });
  });

  it('takes what the balance still has when credits were spent; the rest is recorded as uncollected', async () => {
    const { product, user, tx } = await bought(app, 100);
    await spend(app, user, 70);

    await deliver(app, refundEvent(product, tx));
    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(0);
    const reversal = state.entries.at(-1);
    expect(reversal).toMatchObject({ type: 'reversal', amount: -30 });
    expect(reversal?.metadata).toMatchObject({ requested: 100, uncollected: 70 });
    expect(state.purchases[0]).toMatchObject({ status: 'refunded', credits_reversed: 100 });
  });

  it('REFUND_REVERSED grants back what the refund took, once, and the purchase is completed again', async () => {
    const { product, user, tx, purchaseId } = await bought(app, 100);
    await spend(app, user, 60);
    await deliver(app, refundEvent(product, tx)); // takes 40

    const reversed = refundEvent(product, tx, { type: 'REFUND_REVERSED', cancel_reason: null });
    const res = await deliver(app, reversed);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ outcome: 'processed', purchaseId });
    expect((await deliver(app, reversed)).json().data.outcome).toBe('duplicate');
    const other = await deliver(app, refundEvent(product, tx, { type: 'REFUND_REVERSED' }));
    expect(other.json().data).toMatchObject({
      outcome: 'ignored',
      note: 'nothing to reverse: purchase is completed',
    });

    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(40);
    expect(state.entries.at(-1)).toMatchObject({
      type: 'grant',
      amount: 40,
      purchase_id: purchaseId,
      idempotency_key: `revenuecat:refund-reversed:${tx}`,
    });
    expect(state.entries.filter((e) => e.type === 'grant')).toHaveLength(2);
    expect(state.purchases[0]).toMatchObject({ status: 'completed', credits_reversed: 0 });
    expect(await app.services.ledger.verify()).toEqual([]);
  });

  it('a second refund after a reversal claws back again, under its own key', async () => {
    const { product, user, tx } = await bought(app, 25);
    await deliver(app, refundEvent(product, tx));
    await deliver(app, refundEvent(product, tx, { type: 'REFUND_REVERSED' }));
    const second = await deliver(app, refundEvent(product, tx));
    expect(second.json().data.outcome).toBe('processed');

    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(0);
    expect(state.entries.map((e) => [e.amount, e.idempotency_key])).toEqual([
      [25, `revenuecat:grant:${tx}`],
      [-25, `revenuecat:refund:${tx}`],
      [25, `revenuecat:refund-reversed:${tx}`],
      [-25, `revenuecat:refund:${tx}:2`],
    ]);
    expect(state.purchases[0]).toMatchObject({ status: 'refunded', credits_reversed: 25 });
  });

  it('a refund that arrives before its purchase is parked, then applied when the purchase arrives', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 60 });
    const [user, tx] = [unique('user'), unique('tx')];
    const refund = refundEvent(product, tx, { event_timestamp_ms: 2_000 });

    const early = await deliver(app, refund);
    expect(early.statusCode).toBe(200);
    expect(early.json().data).toMatchObject({ outcome: 'parked', purchaseId: null });
    expect(await storedEvent(pg, refund.event.id as string)).toMatchObject({
      status: 'parked',
      purchase_id: null,
      note: `waiting for the purchase of transaction ${tx}`,
    });
    expect((await deliver(app, refund)).json().data.outcome).toBe('duplicate');

    const grant = await deliver(app, purchaseEvent(product, user, tx, { event_timestamp_ms: 1_000 }));
    expect(grant.statusCode).toBe(200);
    const purchaseId = grant.json().data.purchaseId;

    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(0);
    expect(state.entries.map((e) => [e.type, e.amount, e.idempotency_key])).toEqual([
      ['grant', 60, `revenuecat:grant:${tx}`],
      ['reversal', -60, `revenuecat:refund:${tx}`],
    ]);
    expect(state.purchases[0]).toMatchObject({ id: purchaseId, status: 'refunded', credits_reversed: 60 });
    const parked = await storedEvent(pg, refund.event.id as string);
    expect(parked).toMatchObject({ status: 'processed', purchase_id: purchaseId });
    expect(parked.note).toMatch(/after the purchase arrived/);
    // a later redelivery of the purchase changes nothing
    await deliver(app, purchaseEvent(product, user, tx));
    expect((await rcState(pg, user, tx)).balance).toBe(0);
  });

  it('a parked refund racing its purchase is never lost', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 12 });
    for (let round = 0; round < 5; round++) {
      const [user, tx] = [unique('user'), unique('tx')];
      const responses = await Promise.all([
        deliver(app, refundEvent(product, tx)),
        deliver(app, purchaseEvent(product, user, tx)),
        deliver(app, refundEvent(product, tx)),
      ]);
      expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 200]);
      const state = await rcState(pg, user, tx);
      expect(state.balance).toBe(0);
      expect(state.entries.filter((e) => e.type === 'reversal')).toHaveLength(1);
      expect(state.purchases[0].status).toBe('refunded');
      expect(state.events.filter((e) => e.status === 'parked')).toEqual([]);
    }
  });

  it('parked refund then reversal, both before the purchase: applied in the order RevenueCat sent them', async () => {
    const product = unique('prod');
    await createRcPackage(app, [product], { credits: 8 });
    const [user, tx] = [unique('user'), unique('tx')];
    // delivered in the wrong order (a retry): the event timestamps give the real one
    const reversal = refundEvent(product, tx, { type: 'REFUND_REVERSED', event_timestamp_ms: 3_000 });
    const refund = refundEvent(product, tx, { event_timestamp_ms: 2_000 });
    expect((await deliver(app, reversal)).json().data.outcome).toBe('parked');
    expect((await deliver(app, refund)).json().data.outcome).toBe('parked');
    await deliver(app, purchaseEvent(product, user, tx, { event_timestamp_ms: 1_000 }));

    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(8);
    expect(state.entries.map((e) => e.amount)).toEqual([8, -8, 8]);
    expect(state.purchases[0]).toMatchObject({ status: 'completed', credits_reversed: 0 });
    expect(state.events.every((e) => e.status === 'processed')).toBe(true);
  });

  it('other cancellation reasons are stored and change no credits', async () => {
    const { product, user, tx } = await bought(app, 20);
    for (const reason of [
      'UNSUBSCRIBE',
      'BILLING_ERROR',
      'DEVELOPER_INITIATED',
      'PRICE_INCREASE',
      'UNKNOWN',
      null,
    ]) {
      const body = refundEvent(product, tx, { cancel_reason: reason });
      const res = await deliver(app, body);
      expect(res.statusCode).toBe(200);
      expect(res.json().data.outcome).toBe('ignored');
      expect((await storedEvent(pg, body.event.id as string)).status).toBe('ignored');
    }
    const state = await rcState(pg, user, tx);
    expect(state.balance).toBe(20);
    expect(state.entries).toHaveLength(1);
    expect(state.purchases[0].status).toBe('completed');
  });
});

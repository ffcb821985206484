import { execFile } from 'node:child_process';
import { balanceOf } from '../../../helpers/app.ts';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createStripeClient } from '../../../../src/modules/providers/stripe/stripe.client.ts';
import { createStripeReconciler } from '../../../../src/modules/providers/stripe/stripe-reconcile.service.ts';
import { chargeObject, sessionObject, stripeEnv, stripeEvent } from '../../../helpers/fake-stripe.ts';
import {
  buildStripeApp,
  createPackage,
  deliver,
  eventRows,
  ledgerRows,
  purchaseRow,
  type StripeTestApp,
  startCheckout,
} from './stripe-helpers.ts';

type Obj = Record<string, unknown>;
const AMOUNT = 1000;
const run = promisify(execFile);

let t: StripeTestApp;
let pkg: { id: string };

beforeAll(async () => {
  t = await buildStripeApp();
  pkg = await createPackage(t.app, { name: 'Hundred', credits: 100, price: AMOUNT });
});

/** A reconciler as another replica would have it, reading Stripe's list `pageSize` events at a time. */
const replica = (pageSize = 4) =>
  createStripeReconciler(t.app.db, createStripeClient(t.app.config.stripe), t.app.services.inbox, {
    pageSize,
  });

const eventReads = () => t.fake.requests.filter((r) => r.method === 'GET' && r.path === '/v1/events');

/** A paid checkout whose `checkout.session.completed` is in Stripe's log; delivered to the webhook or not. */
async function paidCheckout(userId: string, created: number, delivered: boolean) {
  const { purchaseId, session } = await startCheckout(t, userId, pkg.id);
  const paid = sessionObject(session);
  const event: Obj = { ...stripeEvent('checkout.session.completed', paid), created };
  t.fake.events.push(event);
  if (delivered) expect((await deliver(t.app, event)).json().data.outcome).toBe('processed');
  return { purchaseId, paymentIntent: paid.payment_intent as string, event };
}

function refundEvent(paymentIntent: string, amountRefunded: number, created: number): Obj {
  const charge = chargeObject({ paymentIntent, amount: AMOUNT, amountRefunded, id: `ch_${paymentIntent}` });
  return { ...stripeEvent('charge.refunded', charge), created };
}

describe('Stripe reconciliation: the events the webhook missed', () => {
  it('10 missed checkout.session.completed and 3 missed charge.refunded: balances as if every webhook had arrived; a second run applies nothing', async () => {
    const now = Math.floor(Date.now() / 1000);
    const missed = [];
    for (let i = 0; i < 10; i++) missed.push(await paidCheckout(`rec_missed_${i}`, now - 600 + i, false));
    const delivered = [];
    for (let i = 0; i < 4; i++) delivered.push(await paidCheckout(`rec_ok_${i}`, now - 500 + i, true));
    // Refunds the webhook never delivered: two of missed purchases (full, half), one of a delivered one (full).
    const refunds = [
      refundEvent(missed[0]!.paymentIntent, AMOUNT, now - 100),
      refundEvent(missed[1]!.paymentIntent, 500, now - 99),
      refundEvent(delivered[0]!.paymentIntent, AMOUNT, now - 98),
    ];
    t.fake.events.push(...refunds);
    // A refund the webhook did deliver, and an event older than Stripe's 30 days (never listed).
    const deliveredRefund = refundEvent(delivered[1]!.paymentIntent, 500, now - 97);
    t.fake.events.push(deliveredRefund);
    expect((await deliver(t.app, deliveredRefund)).json().data.outcome).toBe('processed');
    const ancient = await paidCheckout('rec_ancient', now - 31 * 86_400, false);

    expect((await balanceOf(t.app, 'rec_missed_0')).balance).toBe(0);
    const readsBefore = eventReads().length;
    const report = await replica(4).run();
    expect(report).toMatchObject({ skipped: false, seen: 18, applied: 13, alreadyStored: 5 });
    expect(report.skipped === false && report.outcomes).toEqual({ processed: 13 });
    // 18 events, 4 a page: five pages, each after the first asks for the ones after the last seen.
    const reads = eventReads().slice(readsBefore);
    expect(reads).toHaveLength(5);
    expect(reads[0]!.params).toMatchObject({ limit: '4', created: { gte: expect.any(String) } });
    expect(Object.values(reads[0]!.params.types as Obj).sort()).toEqual(
      [
        'charge.dispute.closed',
        'charge.dispute.created',
        'charge.refunded',
        'checkout.session.async_payment_failed',
        'checkout.session.async_payment_succeeded',
        'checkout.session.completed',
        'checkout.session.expired',
      ].sort(),
    );
    expect(reads[1]!.params.starting_after).toEqual(expect.stringMatching(/^evt_/));
    // The first run reads back Stripe's 30 days.
    expect(Number((reads[0]!.params.created as Obj).gte)).toBeCloseTo(now - 30 * 86_400, -2);

    // As if every webhook had arrived.
    expect((await balanceOf(t.app, 'rec_missed_0')).balance).toBe(0);
    expect((await balanceOf(t.app, 'rec_missed_1')).balance).toBe(50);
    for (let i = 2; i < 10; i++) expect((await balanceOf(t.app, `rec_missed_${i}`)).balance).toBe(100);
    expect((await balanceOf(t.app, 'rec_ok_0')).balance).toBe(0);
    expect((await balanceOf(t.app, 'rec_ok_1')).balance).toBe(50);
    expect((await balanceOf(t.app, 'rec_ok_2')).balance).toBe(100);
    expect((await balanceOf(t.app, 'rec_ancient')).balance).toBe(0);
    expect((await purchaseRow(t, ancient.purchaseId)).status).toBe('pending');
    expect(await purchaseRow(t, missed[0]!.purchaseId)).toMatchObject({
      status: 'refunded',
      credits_reversed: 100,
    });
    expect(await purchaseRow(t, missed[1]!.purchaseId)).toMatchObject({
      status: 'partially_refunded',
      credits_reversed: 50,
    });
    expect((await ledgerRows(t, 'rec_missed_0')).map((e) => [e.type, e.amount, e.idempotency_key])).toEqual([
      ['grant', 100, `stripe:grant:${missed[0]!.purchaseId}`],
      ['reversal', -100, `stripe:refund:${missed[0]!.purchaseId}:100`],
    ]);
    const stored = await t.pg.query(
      `select source, count(*)::int as n from webhook_events where provider = 'stripe' group by source order by source`,
    );
    expect(stored.rows).toEqual([
      { source: 'reconcile', n: 13 },
      { source: 'webhook', n: 5 },
    ]);

    // Second run (the service's own job): starts at the high-water mark less the overlap; applies nothing.
    const again = await t.app.services.reconciler.run();
    expect(again).toMatchObject({ skipped: false, applied: 0, alreadyStored: 18, seen: 18 });
    const last = eventReads().at(-1)!;
    expect(Number((last.params.created as Obj).gte)).toBeGreaterThan(now - 2 * 3600);
    expect(Number((last.params.created as Obj).gte)).toBeLessThan(now - 3000);
    expect((await balanceOf(t.app, 'rec_missed_2')).balance).toBe(100);
    expect(await t.app.services.ledger.verify()).toEqual([]);

    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/credits_stripe_reconcile_events_total\{result="already_stored"\} 18/);
    expect(metrics).toMatch(/credits_stripe_reconcile_runs_total\{outcome="completed"\} 1/);
  });

  it('one replica at a time: a held lease skips the run; concurrent runs never apply an event twice', async () => {
    const now = Math.floor(Date.now() / 1000);
    const missed = [];
    for (let i = 0; i < 5; i++) missed.push(await paidCheckout(`lease_user_${i}`, now - 50 + i, false));

    await t.pg.query(
      `insert into provider_sync_state (name, lease_owner, lease_until)
       values ('stripe:events', 'another-replica', now() + interval '1 minute')
       on conflict (name) do update set lease_owner = excluded.lease_owner, lease_until = excluded.lease_until`,
    );
    expect(await replica().run()).toEqual({ skipped: true, reason: 'another replica is reconciling' });
    expect((await balanceOf(t.app, 'lease_user_0')).balance).toBe(0);
    // A crashed replica's lease runs out.
    await t.pg.query(`update provider_sync_state set lease_until = now() - interval '1 second'`);

    const results = await Promise.all(Array.from({ length: 4 }, () => replica(2).run()));
    const done = results.filter((r) => !r.skipped);
    expect(done.length).toBeGreaterThanOrEqual(1);
    expect(done.reduce((sum, r) => sum + (r.skipped ? 0 : r.applied), 0)).toBe(5);
    for (let i = 0; i < 5; i++) {
      expect((await balanceOf(t.app, `lease_user_${i}`)).balance).toBe(100);
      expect(await ledgerRows(t, `lease_user_${i}`)).toHaveLength(1);
    }
    const { rows } = await t.pg.query(
      'select lease_owner, lease_until, last_result from provider_sync_state',
    );
    expect(rows).toEqual([expect.objectContaining({ lease_owner: null, lease_until: null })]);
  });

  it('reconciliation racing the webhook on the same missed events grants each purchase once', async () => {
    const now = Math.floor(Date.now() / 1000);
    const missed = [];
    for (let i = 0; i < 6; i++) missed.push(await paidCheckout(`race_rec_${i}`, now - 20 + i, false));
    const refund = refundEvent(missed[0]!.paymentIntent, 500, now - 1);
    t.fake.events.push(refund);
    const results = await Promise.all([
      replica(2).run(),
      ...missed.map((m) => deliver(t.app, m.event)),
      deliver(t.app, refund),
    ]);
    expect(results.slice(1).map((r) => (r as { statusCode: number }).statusCode)).toEqual(Array(7).fill(200));
    for (let i = 0; i < 6; i++) {
      expect(await ledgerRows(t, `race_rec_${i}`)).toHaveLength(i === 0 ? 2 : 1);
      expect((await balanceOf(t.app, `race_rec_${i}`)).balance).toBe(i === 0 ? 50 : 100);
    }
    expect(await t.app.services.ledger.verify()).toEqual([]);
  });

  it('npm run reconcile prints events seen, applied and already stored', async () => {
    const now = Math.floor(Date.now() / 1000);
    const missed = await paidCheckout('cli_user', now - 5, false);
    const root = path.resolve(import.meta.dirname, '../../../..');
    const { stdout } = await run(process.execPath, [path.join(root, 'src/cli/reconcile.ts')], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        DATABASE_URL: t.databaseUrl,
        ...stripeEnv(t.fake),
      },
    });
    expect(stdout).toMatch(/seen \d+, applied 1, already stored \d+/);
    expect((await balanceOf(t.app, 'cli_user')).balance).toBe(100);
    expect(await eventRows(t, [missed.event.id as string])).toEqual([
      expect.objectContaining({ status: 'processed', purchase_id: missed.purchaseId }),
    ]);
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, createApiKey } from '../../helpers/app.ts';
import { chargeObject, sessionObject, stripeEvent } from '../../helpers/fake-stripe.ts';
import {
  buildStripeApp,
  createPackage,
  deliver,
  type StripeTestApp,
  startCheckout,
} from '../providers/stripe/stripe-helpers.ts';
import {
  deliveriesOf,
  fastWebhooks,
  type Receiver,
  startReceiver,
  subscribe,
  waitFor,
} from './events-out-helpers.ts';

let t: StripeTestApp;
let receiver: Receiver;

beforeAll(async () => {
  t = await buildStripeApp(fastWebhooks);
  t.app.services.webhookWorker.start();
  receiver = await startReceiver();
});

describe('webhooks: a purchase → debit → refund story', () => {
  it('reaches a verifying receiver with every event of the story exactly once', async () => {
    const all = await subscribe(t.app, receiver, { events: ['*'], lowBalanceThresholds: [50] });
    const debitsOnly = await subscribe(t.app, receiver, { events: ['credits.debited'] });
    const pkg = await createPackage(t.app, { credits: 100, price: 1000 });
    const apiKey = await createApiKey(t.app, ['credits:debit']);

    // Stripe delivers each of its events twice: the service applies them once, so it reports them once.
    const { purchaseId, session } = await startCheckout(t, 'story_user', pkg.id);
    const paid = sessionObject(session);
    const completed = stripeEvent('checkout.session.completed', paid);
    expect((await deliver(t.app, completed)).statusCode).toBe(200);
    expect((await deliver(t.app, completed)).statusCode).toBe(200);

    const debit = await t.app.inject({
      method: 'POST',
      url: '/api/v1/accounts/story_user/debits',
      headers: { 'x-api-key': apiKey, 'idempotency-key': 'story-debit-1' },
      payload: { amount: 30, reason: 'one render' },
    });
    expect(debit.statusCode).toBe(201);

    const refund = stripeEvent(
      'charge.refunded',
      chargeObject({ paymentIntent: paid.payment_intent as string, amount: 1000, amountRefunded: 1000 }),
    );
    expect((await deliver(t.app, refund)).statusCode).toBe(200);
    expect((await deliver(t.app, refund)).statusCode).toBe(200);

    const expected = [
      'credits.granted',
      'purchase.completed',
      'credits.debited',
      'credits.debited', // the second endpoint's copy: same event, same webhook-id
      'credits.clawed_back',
      'purchase.refunded',
      'balance.low',
      'balance.depleted',
    ];
    await waitFor(
      () => receiver.requests.filter((r) => r.status === 204).length >= expected.length,
      'the story to be delivered',
    );
    await waitFor(async () => {
      const { rows } = await t.pg.query(
        `select count(*)::int as n from webhook_deliveries where status = 'delivered'`,
      );
      return rows[0].n === expected.length;
    }, 'the deliveries to be recorded');
    // Nothing more arrives: the worker has caught up and sent each delivery once.
    await t.app.services.webhookWorker.stop();
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
    expect(receiver.requests.map((r) => JSON.parse(r.body).type).sort()).toEqual([...expected].sort());

    // Deduplicated by webhook-id, as a receiver keeps them: each event once.
    const events = [...receiver.events.values()];
    const types = events.map((e) => e.type).sort();
    expect(types).toEqual([...new Set(expected)].sort());
    for (const [id, e] of receiver.events) expect(e.id).toBe(id);

    const byType = Object.fromEntries(events.map((e) => [e.type, e]));
    expect(byType['purchase.completed']?.data).toMatchObject({
      purchase: { id: purchaseId, userId: 'story_user', status: 'completed', credits: 100 },
      previousStatus: 'pending',
    });
    expect(byType['credits.granted']?.data).toMatchObject({
      entry: { type: 'grant', amount: 100, balanceAfter: 100, purchaseId },
      balance: { userId: 'story_user', balance: 100, available: 100, held: 0 },
    });
    expect(byType['credits.debited']?.data).toMatchObject({
      entry: {
        type: 'debit',
        amount: -30,
        balanceAfter: 70,
        reason: 'one render',
        idempotencyKey: 'story-debit-1',
      },
      balance: { balance: 70, available: 70 },
    });
    expect(byType['credits.clawed_back']?.data).toMatchObject({
      entry: { type: 'reversal', amount: -70, balanceAfter: 0, metadata: { uncollected: 30 } },
    });
    expect(byType['purchase.refunded']?.data).toMatchObject({
      purchase: { id: purchaseId, status: 'refunded', creditsReversed: 100 },
      previousStatus: 'completed',
    });
    expect(byType['balance.low']?.data).toMatchObject({
      threshold: 50,
      endpointId: all.id,
      balance: { balance: 0, available: 0 },
    });
    expect(byType['balance.depleted']?.data).toMatchObject({ balance: { available: 0 } });

    // The endpoint subscribed to credits.debited alone got only that; the deliveries say so.
    const onlyDebits = await deliveriesOf(t.app, debitsOnly.id);
    expect(onlyDebits.map((d) => [d.eventType, d.status, d.attempts, d.lastStatusCode])).toEqual([
      ['credits.debited', 'delivered', 1, 204],
    ]);
    expect((await deliveriesOf(t.app, all.id)).every((d) => d.status === 'delivered')).toBe(true);

    // The event log has the same events, with the bodies the receiver got.
    const log = await t.app.inject({ method: 'GET', url: '/api/v1/events?limit=100', headers: asAdmin() });
    expect(log.statusCode).toBe(200);
    const logged = log.json().data.items as { id: string }[];
    for (const e of events) expect(logged).toContainEqual(e);
  });
});

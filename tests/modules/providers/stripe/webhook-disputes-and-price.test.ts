import { beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, balanceOf } from '../../../helpers/app.ts';
import { chargeObject, disputeObject, sessionObject, stripeEvent } from '../../../helpers/fake-stripe.ts';
import {
  buildStripeApp,
  createPackage,
  deliver,
  ledgerRows,
  purchaseRow,
  type StripeTestApp,
  startCheckout,
} from './stripe-helpers.ts';

/**
 * Section 5 through the app with real Stripe-signed webhooks: a purchase's price is what the buyer paid, a
 * lost dispute refunds the purchase, and every refund and every closed dispute sends its purchase.* event,
 * whatever the purchase's status.
 */
let t: StripeTestApp;
let pkg: { id: string };
const AMOUNT = 1000;

beforeAll(async () => {
  t = await buildStripeApp();
  pkg = await createPackage(t.app, { name: 'Hundred', credits: 100, price: AMOUNT, currency: 'usd' });
});

async function ok(event: Record<string, unknown>) {
  const res = await deliver(t.app, event);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().data as { outcome: string; note: string | null };
}

/** A checkout paid and granted through the webhook. */
async function paidPurchase(userId: string, sessionChanges: Record<string, unknown> = {}) {
  const { purchaseId, session } = await startCheckout(t, userId, pkg.id);
  const paid = sessionObject(session, sessionChanges);
  expect((await ok(stripeEvent('checkout.session.completed', paid))).outcome).toBe('processed');
  return { purchaseId, paymentIntent: paid.payment_intent as string };
}

/** The purchase.* events of a purchase, oldest first: [type, previous status, status, outcome]. */
async function purchaseEvents(purchaseId: string) {
  const { rows } = await t.pg.query(
    `select type, data->>'previous_status' as was, data->'purchase'->>'status' as status,
            data->>'outcome' as outcome
     from events where type like 'purchase.%' and data->'purchase'->>'id' = $1 order by id`,
    [purchaseId],
  );
  return rows.map((r) => [r.type, r.was, r.status, r.outcome]);
}

const ledger = async (userId: string) =>
  (await ledgerRows(t, userId)).map((e) => [e.type, e.amount, e.balance_after]);

describe('Stripe: the purchase price is what the buyer paid', () => {
  it('records the paid session amount_total and currency, and keeps the package price when there is none', async () => {
    // A coupon and a Price in euros: 7.50 EUR paid for the 10.00 USD package.
    const discounted = await paidPurchase('price_user', { amount_total: 750, currency: 'eur' });
    expect(await purchaseRow(t, discounted.purchaseId)).toMatchObject({
      status: 'completed',
      credits: 100,
      price: 750,
      currency: 'eur',
    });
    expect((await balanceOf(t.app, 'price_user')).balance).toBe(100);
    const { rows } = await t.pg.query(
      `select data->'purchase'->>'price' as price, data->'purchase'->>'currency' as currency
       from events where type = 'purchase.completed' and data->'purchase'->>'id' = $1`,
      [discounted.purchaseId],
    );
    expect(rows).toEqual([{ price: '750', currency: 'eur' }]);

    const unknown = await paidPurchase('price_user', { amount_total: null, currency: null });
    expect(await purchaseRow(t, unknown.purchaseId)).toMatchObject({ price: AMOUNT, currency: 'usd' });
  });
});

describe('Stripe disputes and refunds, whatever the purchase status', () => {
  it('a dispute lost makes the purchase refunded; its credits stay clawed back; dispute_closed says lost', async () => {
    const { purchaseId, paymentIntent } = await paidPurchase('lost_user');
    const dispute = { id: 'dp_lost_1', paymentIntent, amount: AMOUNT };
    await ok(stripeEvent('charge.dispute.created', disputeObject({ ...dispute, status: 'needs_response' })));
    expect((await balanceOf(t.app, 'lost_user')).balance).toBe(0);

    const closed = stripeEvent('charge.dispute.closed', disputeObject({ ...dispute, status: 'lost' }));
    expect(await ok(closed)).toMatchObject({
      outcome: 'processed',
      note: 'dispute dp_lost_1 lost: purchase refunded, its credits stay clawed back',
    });
    expect((await ok(closed)).outcome).toBe('duplicate');
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'refunded',
      credits_reversed: 100,
      credits_disputed: 0,
      dispute_outcome: 'lost',
    });
    expect((await balanceOf(t.app, 'lost_user')).balance).toBe(0);
    expect(await ledger('lost_user')).toEqual([
      ['grant', 100, 100],
      ['reversal', -100, 0],
    ]);
    expect(await purchaseEvents(purchaseId)).toEqual([
      ['purchase.completed', 'pending', 'completed', null],
      ['purchase.disputed', 'completed', 'disputed', null],
      ['purchase.dispute_closed', 'disputed', 'refunded', 'lost'],
    ]);

    // The event log shows the outcome beside the purchase.
    const log = await t.app.inject({ method: 'GET', url: '/api/v1/events?limit=100', headers: asAdmin() });
    const closedEvent = (log.json().data.items as { type: string; data: Record<string, unknown> }[]).find(
      (e) => e.type === 'purchase.dispute_closed' && (e.data.purchase as { id: string }).id === purchaseId,
    );
    expect(closedEvent?.data).toMatchObject({
      outcome: 'lost',
      purchase: { id: purchaseId, status: 'refunded', creditsReversed: 100 },
    });
  });

  it('a refund while a dispute is open sends purchase.refunded; winning gives back only the dispute share', async () => {
    const { purchaseId, paymentIntent } = await paidPurchase('open_user');
    const dispute = { id: 'dp_open_1', paymentIntent, amount: AMOUNT };
    await ok(stripeEvent('charge.dispute.created', disputeObject({ ...dispute, status: 'needs_response' })));

    // Half the charge refunded while the dispute holds everything: the dispute covers it, nothing more is taken.
    const half = chargeObject({ paymentIntent, amount: AMOUNT, amountRefunded: 500 });
    await ok(stripeEvent('charge.refunded', half));
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'disputed',
      credits_reversed: 100,
      credits_disputed: 50,
    });
    expect((await balanceOf(t.app, 'open_user')).balance).toBe(0);

    await ok(stripeEvent('charge.dispute.closed', disputeObject({ ...dispute, status: 'won' })));
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'partially_refunded',
      credits_reversed: 50,
      credits_disputed: 0,
      dispute_outcome: 'won',
    });
    expect((await balanceOf(t.app, 'open_user')).balance).toBe(50);
    expect(await ledger('open_user')).toEqual([
      ['grant', 100, 100],
      ['reversal', -100, 0],
      ['grant', 50, 50],
    ]);
    expect(await purchaseEvents(purchaseId)).toEqual([
      ['purchase.completed', 'pending', 'completed', null],
      ['purchase.disputed', 'completed', 'disputed', null],
      ['purchase.refunded', 'disputed', 'disputed', null],
      ['purchase.dispute_closed', 'disputed', 'partially_refunded', 'won'],
    ]);
  });

  it('a dispute closed whose opening was never seen: lost claws back and refunds, won changes no credits', async () => {
    const lost = await paidPurchase('unseen_user');
    const dispute = { id: 'dp_unseen_lost', paymentIntent: lost.paymentIntent, amount: AMOUNT };
    await ok(stripeEvent('charge.dispute.closed', disputeObject({ ...dispute, status: 'lost' })));
    expect(await purchaseRow(t, lost.purchaseId)).toMatchObject({
      status: 'refunded',
      credits_reversed: 100,
      dispute_outcome: 'lost',
    });
    expect(await ledger('unseen_user')).toEqual([
      ['grant', 100, 100],
      ['reversal', -100, 0],
    ]);
    // Its opening, late: the dispute is closed already, nothing changes and nothing is sent.
    const late = await ok(
      stripeEvent('charge.dispute.created', disputeObject({ ...dispute, status: 'needs_response' })),
    );
    expect(late).toMatchObject({
      outcome: 'processed',
      note: 'the dispute of this purchase was closed already (lost)',
    });
    expect((await purchaseRow(t, lost.purchaseId)).status).toBe('refunded');
    expect(await purchaseEvents(lost.purchaseId)).toEqual([
      ['purchase.completed', 'pending', 'completed', null],
      ['purchase.dispute_closed', 'completed', 'refunded', 'lost'],
    ]);

    const won = await paidPurchase('unseen_won_user');
    await ok(
      stripeEvent(
        'charge.dispute.closed',
        disputeObject({
          id: 'dp_unseen_won',
          paymentIntent: won.paymentIntent,
          amount: AMOUNT,
          status: 'won',
        }),
      ),
    );
    expect(await purchaseRow(t, won.purchaseId)).toMatchObject({
      status: 'completed',
      credits_reversed: 0,
      dispute_outcome: 'won',
    });
    expect(await ledger('unseen_won_user')).toEqual([['grant', 100, 100]]);
    expect(await purchaseEvents(won.purchaseId)).toEqual([
      ['purchase.completed', 'pending', 'completed', null],
      ['purchase.dispute_closed', 'completed', 'completed', 'won'],
    ]);
  });

  it('every refund increment sends purchase.refunded, and a refund of a refunded purchase does not repeat it', async () => {
    const { purchaseId, paymentIntent } = await paidPurchase('refund_user');
    const refund = (amountRefunded: number) =>
      stripeEvent('charge.refunded', chargeObject({ paymentIntent, amount: AMOUNT, amountRefunded }));
    await ok(refund(250));
    await ok(refund(600));
    await ok(refund(AMOUNT));
    await ok(refund(AMOUNT)); // another delivery (a new event id) of the same refund state
    expect(await ledger('refund_user')).toEqual([
      ['grant', 100, 100],
      ['reversal', -25, 75],
      ['reversal', -35, 40],
      ['reversal', -40, 0],
    ]);
    expect(await purchaseEvents(purchaseId)).toEqual([
      ['purchase.completed', 'pending', 'completed', null],
      ['purchase.refunded', 'completed', 'partially_refunded', null],
      ['purchase.refunded', 'partially_refunded', 'partially_refunded', null],
      ['purchase.refunded', 'partially_refunded', 'refunded', null],
    ]);
  });
});

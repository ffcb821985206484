import { beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../../../src/http/types.ts';
import { asUser, createApiKey, balanceOf } from '../../../helpers/app.ts';
import { chargeObject, disputeObject, sessionObject, stripeEvent } from '../../../helpers/fake-stripe.ts';
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

let t: StripeTestApp;
let pkg: { id: string };
let debitKey: string;

/** 100 credits for 10.00: a charge of 1000 minor units. */
const AMOUNT = 1000;

beforeAll(async () => {
  t = await buildStripeApp();
  pkg = await createPackage(t.app, { name: 'Hundred', credits: 100, price: AMOUNT });
  debitKey = await createApiKey(t.app, ['credits:debit']);
});

/** A checkout paid and granted through the webhook; returns the ids refunds and disputes refer to. */
async function paidPurchase(userId: string) {
  const { purchaseId, session } = await startCheckout(t, userId, pkg.id);
  const paid = sessionObject(session);
  const res = await deliver(t.app, stripeEvent('checkout.session.completed', paid));
  expect(res.json().data.outcome).toBe('processed');
  return { purchaseId, paymentIntent: paid.payment_intent as string, session };
}

async function spend(app: App, userId: string, amount: number) {
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/accounts/${userId}/debits`,
    headers: { 'x-api-key': debitKey, 'idempotency-key': `spend-${userId}-${amount}` },
    payload: { amount },
  });
  expect(res.statusCode).toBe(201);
}

/** Delivers the same event twice (Stripe's at-least-once delivery): the second is a duplicate. */
async function deliverTwice(event: Record<string, unknown>) {
  const first = await deliver(t.app, event);
  const second = await deliver(t.app, event);
  expect(first.statusCode).toBe(200);
  expect(second.statusCode).toBe(200);
  expect(second.json().data).toMatchObject({ outcome: 'duplicate', duplicate: true });
  return first.json().data;
}

describe('Stripe webhook: refunds and disputes', () => {
  it('a half refund then a full refund, each delivered twice, claw back 50% then the rest', async () => {
    const { purchaseId, paymentIntent } = await paidPurchase('refund_user');
    const charge = { paymentIntent, amount: AMOUNT, id: 'ch_refund_user' };

    const half = await deliverTwice(
      stripeEvent('charge.refunded', chargeObject({ ...charge, amountRefunded: 500 }), {
        previous: { amount_refunded: 0 },
      }),
    );
    expect(half).toMatchObject({ outcome: 'processed', purchaseId });
    expect((await balanceOf(t.app, 'refund_user')).balance).toBe(50);
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'partially_refunded',
      credits_reversed: 50,
    });

    await deliverTwice(
      stripeEvent('charge.refunded', chargeObject({ ...charge, amountRefunded: AMOUNT }), {
        previous: { amount_refunded: 500, refunded: false },
      }),
    );
    expect((await balanceOf(t.app, 'refund_user')).balance).toBe(0);
    expect(await purchaseRow(t, purchaseId)).toMatchObject({ status: 'refunded', credits_reversed: 100 });
    expect(await ledgerRows(t, 'refund_user')).toEqual([
      expect.objectContaining({ type: 'grant', amount: 100, balance_after: 100 }),
      expect.objectContaining({
        type: 'reversal',
        amount: -50,
        balance_after: 50,
        purchase_id: purchaseId,
        idempotency_key: `stripe:refund:${purchaseId}:50`,
      }),
      expect.objectContaining({
        type: 'reversal',
        amount: -50,
        balance_after: 0,
        idempotency_key: `stripe:refund:${purchaseId}:100`,
      }),
    ]);
    const api = await t.app.inject({
      method: 'GET',
      url: '/api/v1/credit-packages/purchases',
      headers: asUser('refund_user'),
    });
    expect(api.json().data.items[0]).toMatchObject({
      id: purchaseId,
      status: 'refunded',
      creditsReversed: 100,
    });

    // Credits already spent: each increment asks for its own share; what could not be taken is recorded,
    // and counts as reversed, so the full refund does not chase it again.
    const spent = await paidPurchase('spender');
    await spend(t.app, 'spender', 80);
    const spentCharge = { paymentIntent: spent.paymentIntent, amount: AMOUNT };
    await deliverTwice(stripeEvent('charge.refunded', chargeObject({ ...spentCharge, amountRefunded: 500 })));
    expect((await balanceOf(t.app, 'spender')).balance).toBe(0);
    expect(await purchaseRow(t, spent.purchaseId)).toMatchObject({
      status: 'partially_refunded',
      credits_reversed: 50,
    });
    await deliverTwice(
      stripeEvent('charge.refunded', chargeObject({ ...spentCharge, amountRefunded: AMOUNT })),
    );
    const reversals = (await ledgerRows(t, 'spender')).filter((e) => e.type === 'reversal');
    expect(reversals.map((e) => [e.amount, e.metadata.requested, e.metadata.uncollected])).toEqual([
      [-20, 50, 30],
      [0, 50, 50],
    ]);
    expect(await purchaseRow(t, spent.purchaseId)).toMatchObject({
      status: 'refunded',
      credits_reversed: 100,
    });
  });

  it('a dispute claws back the rest; winning it grants back exactly what the dispute took', async () => {
    const { purchaseId, paymentIntent } = await paidPurchase('dispute_user');
    await spend(t.app, 'dispute_user', 30);
    const dispute = { id: 'dp_test_won', paymentIntent, amount: AMOUNT };

    const opened = await deliverTwice(
      stripeEvent('charge.dispute.created', disputeObject({ ...dispute, status: 'needs_response' })),
    );
    expect(opened).toMatchObject({ outcome: 'processed', purchaseId });
    expect((await balanceOf(t.app, 'dispute_user')).balance).toBe(0);
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'disputed',
      credits_reversed: 100,
      credits_disputed: 100,
    });

    await deliverTwice(stripeEvent('charge.dispute.closed', disputeObject({ ...dispute, status: 'won' })));
    // It took 70 (30 were spent before): 70 come back, not 100.
    expect((await balanceOf(t.app, 'dispute_user')).balance).toBe(70);
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'completed',
      credits_reversed: 0,
      credits_disputed: 0,
    });
    const entries = await ledgerRows(t, 'dispute_user');
    expect(entries.map((e) => [e.type, e.amount, e.balance_after])).toEqual([
      ['grant', 100, 100],
      ['debit', -30, 70],
      ['reversal', -70, 0],
      ['grant', 70, 70],
    ]);
    expect(entries[2]!.metadata).toMatchObject({ requested: 100, uncollected: 30, disputeId: 'dp_test_won' });
    expect(entries[3]!.idempotency_key).toBe('stripe:dispute-won:dp_test_won');

    // After a half refund, a dispute takes the other half; a lost dispute keeps it and refunds the purchase.
    const lost = await paidPurchase('lost_user');
    await deliver(
      t.app,
      stripeEvent(
        'charge.refunded',
        chargeObject({ paymentIntent: lost.paymentIntent, amount: AMOUNT, amountRefunded: 500 }),
      ),
    );
    const lostDispute = { id: 'dp_test_lost', paymentIntent: lost.paymentIntent, amount: 500 };
    await deliver(
      t.app,
      stripeEvent('charge.dispute.created', disputeObject({ ...lostDispute, status: 'needs_response' })),
    );
    expect((await balanceOf(t.app, 'lost_user')).balance).toBe(0);
    await deliver(
      t.app,
      stripeEvent('charge.dispute.closed', disputeObject({ ...lostDispute, status: 'lost' })),
    );
    expect((await balanceOf(t.app, 'lost_user')).balance).toBe(0);
    // Lost: the buyer has the money back, so the purchase is refunded (section 5).
    expect(await purchaseRow(t, lost.purchaseId)).toMatchObject({
      status: 'refunded',
      credits_reversed: 100,
      credits_disputed: 0,
    });
  });

  it('a refund that arrives before the grant is not lost: parked, then applied with the grant, in order', async () => {
    const { purchaseId, session } = await startCheckout(t, 'early_user', pkg.id);
    const paid = sessionObject(session, { payment_intent: 'pi_test_early' });
    const charge = { id: 'ch_test_early', paymentIntent: 'pi_test_early', amount: AMOUNT };
    // A charge that carries the purchase id (payment_intent_data.metadata) is parked on the pending purchase.
    const half = stripeEvent(
      'charge.refunded',
      chargeObject({
        ...charge,
        amountRefunded: 500,
        metadata: { purchaseId, userId: 'early_user', packageId: pkg.id },
      }),
    );
    // One without it names only a PaymentIntent no purchase has yet: stored, and kept for the grant.
    const full = stripeEvent('charge.refunded', chargeObject({ ...charge, amountRefunded: AMOUNT }));

    const parked = await deliver(t.app, half);
    expect(parked.statusCode).toBe(200);
    expect(parked.json().data).toMatchObject({ outcome: 'parked', purchaseId });
    const unmatched = await deliver(t.app, full);
    expect(unmatched.statusCode).toBe(200);
    expect(unmatched.json().data).toMatchObject({ outcome: 'ignored', purchaseId: null });
    expect(await eventRows(t, [half.id as string, full.id as string])).toEqual([
      expect.objectContaining({ event_id: half.id, status: 'parked', purchase_id: purchaseId }),
      expect.objectContaining({ event_id: full.id, status: 'ignored', purchase_id: null }),
    ]);
    expect(await ledgerRows(t, 'early_user')).toEqual([]);
    expect((await purchaseRow(t, purchaseId)).status).toBe('pending');

    // The grant lands: the same transaction applies both refunds after it, oldest first.
    const completed = await deliver(t.app, stripeEvent('checkout.session.completed', paid));
    expect(completed.statusCode).toBe(200);
    expect(completed.json().data.note).toContain('applied 2 earlier event(s)');
    expect((await balanceOf(t.app, 'early_user')).balance).toBe(0);
    expect((await ledgerRows(t, 'early_user')).map((e) => [e.type, e.amount, e.idempotency_key])).toEqual([
      ['grant', 100, `stripe:grant:${purchaseId}`],
      ['reversal', -50, `stripe:refund:${purchaseId}:50`],
      ['reversal', -50, `stripe:refund:${purchaseId}:100`],
    ]);
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'refunded',
      credits_reversed: 100,
      stripe_payment_intent_id: 'pi_test_early',
    });
    expect(await eventRows(t, [half.id as string, full.id as string])).toEqual([
      expect.objectContaining({ event_id: half.id, status: 'processed', purchase_id: purchaseId }),
      expect.objectContaining({ event_id: full.id, status: 'processed', purchase_id: purchaseId }),
    ]);

    // Stripe retrying the early refunds, or the completed event, changes nothing more.
    expect((await deliver(t.app, half)).json().data.outcome).toBe('duplicate');
    expect((await deliver(t.app, full)).json().data.outcome).toBe('duplicate');
    const again = await deliver(t.app, stripeEvent('checkout.session.async_payment_succeeded', paid));
    expect(again.json().data.note).toBe('already granted');
    expect(await ledgerRows(t, 'early_user')).toHaveLength(3);
  });
});

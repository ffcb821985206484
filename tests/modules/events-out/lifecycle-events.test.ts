import { beforeAll, describe, expect, it } from 'vitest';
import { asUser } from '../../helpers/app.ts';
import { chargeObject, disputeObject, sessionObject, stripeEvent } from '../../helpers/fake-stripe.ts';
import {
  createRcPackage,
  deliver as deliverRc,
  purchaseEvent,
  RC_AUTH,
  refundEvent,
  unique,
} from '../../helpers/revenuecat.ts';
import {
  buildStripeApp,
  createPackage,
  deliver,
  purchaseRow,
  type StripeTestApp,
  startCheckout,
} from '../providers/stripe/stripe-helpers.ts';

/**
 * Every purchase status change goes through the purchase lifecycle (src/modules/purchases/purchase-lifecycle.ts) as an
 * UPDATE of purchases.status; the trigger of migration 012 turns each into one purchase.* event. These drive
 * the real provider flows (Stripe webhook, RevenueCat webhook, a failed checkout), not SQL by hand.
 */
let t: StripeTestApp;
let pkg: { id: string };
const AMOUNT = 1000;

beforeAll(async () => {
  t = await buildStripeApp({ REVENUECAT_WEBHOOK_AUTH: RC_AUTH });
  pkg = await createPackage(t.app, { credits: 100, price: AMOUNT });
});

/** The purchase.* events of a purchase, oldest first: [type, status it came from, status it has]. */
async function purchaseEvents(purchaseId: string) {
  const { rows } = await t.pg.query(
    `select type, data->>'previous_status' as was, data->'purchase'->>'status' as status
     from events where type like 'purchase.%' and data->'purchase'->>'id' = $1 order by id`,
    [purchaseId],
  );
  return rows.map((r) => [r.type, r.was, r.status]);
}

const ok = async (res: Promise<{ statusCode: number; body: string }>) => {
  const r = await res;
  expect(r.statusCode, r.body).toBe(200);
};

describe('purchase events follow the purchase lifecycle', () => {
  it('Stripe: paid, partly refunded, disputed, dispute won, fully refunded: one event per change', async () => {
    const { purchaseId, session } = await startCheckout(t, 'lc_stripe', pkg.id);
    const paid = sessionObject(session);
    const paymentIntent = paid.payment_intent as string;
    const completed = stripeEvent('checkout.session.completed', paid);
    await ok(deliver(t.app, completed));
    await ok(deliver(t.app, completed)); // a duplicate changes nothing, so reports nothing
    await ok(
      deliver(
        t.app,
        stripeEvent('charge.refunded', chargeObject({ paymentIntent, amount: AMOUNT, amountRefunded: 500 })),
      ),
    );
    const dispute = { id: 'dp_lifecycle', paymentIntent, amount: 500 };
    await ok(
      deliver(
        t.app,
        stripeEvent('charge.dispute.created', disputeObject({ ...dispute, status: 'needs_response' })),
      ),
    );
    await ok(
      deliver(t.app, stripeEvent('charge.dispute.closed', disputeObject({ ...dispute, status: 'won' }))),
    );
    await ok(
      deliver(
        t.app,
        stripeEvent(
          'charge.refunded',
          chargeObject({ paymentIntent, amount: AMOUNT, amountRefunded: AMOUNT }),
        ),
      ),
    );
    expect((await purchaseRow(t, purchaseId)).status).toBe('refunded');
    expect(await purchaseEvents(purchaseId)).toEqual([
      ['purchase.completed', 'pending', 'completed'],
      ['purchase.refunded', 'completed', 'partially_refunded'],
      ['purchase.disputed', 'partially_refunded', 'disputed'],
      ['purchase.dispute_closed', 'disputed', 'partially_refunded'],
      ['purchase.refunded', 'partially_refunded', 'refunded'],
    ]);
  });

  it('Stripe: an async payment that fails, a session that expires, a session Stripe could not create', async () => {
    const a = await startCheckout(t, 'lc_closed', pkg.id);
    const unpaid = sessionObject(a.session, { payment_status: 'unpaid' });
    await ok(deliver(t.app, stripeEvent('checkout.session.completed', unpaid))); // references only
    await ok(deliver(t.app, stripeEvent('checkout.session.async_payment_failed', unpaid)));
    expect(await purchaseEvents(a.purchaseId)).toEqual([['purchase.failed', 'pending', 'failed']]);

    const b = await startCheckout(t, 'lc_closed', pkg.id);
    const expired = sessionObject(b.session, {
      status: 'expired',
      payment_status: 'unpaid',
      payment_intent: null,
    });
    await ok(deliver(t.app, stripeEvent('checkout.session.expired', expired)));
    expect(await purchaseEvents(b.purchaseId)).toEqual([['purchase.expired', 'pending', 'expired']]);

    t.fake.fail(500, 2); // the request and its one retry
    const down = await t.app.inject({
      method: 'POST',
      url: '/api/v1/credits/checkout',
      headers: asUser('lc_down'),
      payload: { packageId: pkg.id },
    });
    expect(down.statusCode).toBe(503);
    const { rows } = await t.pg.query(`select id from purchases where user_id = 'lc_down'`);
    expect(rows).toHaveLength(1);
    expect(await purchaseEvents(rows[0].id)).toEqual([['purchase.failed', 'pending', 'failed']]);
  });

  it('RevenueCat: bought (created completed), refunded, refund reversed, refunded again', async () => {
    const product = unique('lc_prod');
    await createRcPackage(t.app, [product], { credits: 40 });
    const [user, tx] = [unique('lc_user'), unique('lc_tx')];
    const bought = await deliverRc(t.app, purchaseEvent(product, user, tx));
    expect(bought.json().data.outcome).toBe('processed');
    const purchaseId = bought.json().data.purchaseId as string;
    expect((await deliverRc(t.app, refundEvent(product, tx))).json().data.outcome).toBe('processed');
    const reversed = refundEvent(product, tx, { type: 'REFUND_REVERSED', cancel_reason: null });
    expect((await deliverRc(t.app, reversed)).json().data.outcome).toBe('processed');
    expect((await deliverRc(t.app, refundEvent(product, tx))).json().data.outcome).toBe('processed');

    expect(await purchaseEvents(purchaseId)).toEqual([
      ['purchase.completed', null, 'completed'],
      ['purchase.refunded', 'completed', 'refunded'],
      ['purchase.completed', 'refunded', 'completed'],
      ['purchase.refunded', 'completed', 'refunded'],
    ]);
  });
});

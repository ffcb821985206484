import { beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, balanceOf } from '../../../helpers/app.ts';
import { sessionObject, stripeEvent } from '../../../helpers/fake-stripe.ts';
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

beforeAll(async () => {
  t = await buildStripeApp();
  pkg = await createPackage(t.app, { name: 'Hundred', credits: 100, price: 1000 });
});

describe('Stripe webhook: granting a Checkout purchase', () => {
  it('25 concurrent deliveries of one checkout.session.completed grant once', async () => {
    const { purchaseId, session } = await startCheckout(t, 'conc_user', pkg.id);
    const paid = sessionObject(session);
    const event = stripeEvent('checkout.session.completed', paid);

    const responses = await Promise.all(Array.from({ length: 25 }, () => deliver(t.app, event)));
    for (const res of responses) {
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ isSuccess: true, statusCode: 200, data: { eventId: event.id } });
    }
    const outcomes = responses.map((r) => r.json().data.outcome);
    expect(outcomes.filter((o) => o === 'processed')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(24);

    expect((await balanceOf(t.app, 'conc_user')).balance).toBe(100);
    expect(await ledgerRows(t, 'conc_user')).toEqual([
      expect.objectContaining({
        type: 'grant',
        amount: 100,
        balance_after: 100,
        source: 'stripe',
        purchase_id: purchaseId,
        idempotency_key: `stripe:grant:${purchaseId}`,
      }),
    ]);
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'completed',
      provider_ref: session.id,
      stripe_payment_intent_id: paid.payment_intent,
      credits_reversed: 0,
    });
    expect((await purchaseRow(t, purchaseId)).completed_at).not.toBeNull();
    expect(await eventRows(t, [event.id as string])).toEqual([
      expect.objectContaining({
        type: 'checkout.session.completed',
        status: 'processed',
        purchase_id: purchaseId,
      }),
    ]);
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/credits_webhook_events_total\{provider="stripe",outcome="processed"\} [1-9]/);
    expect(metrics).toMatch(
      /credits_webhook_events_total\{provider="stripe",outcome="duplicate"\} (2[4-9]|[3-9]\d)/,
    );
  });

  it('checkout.session.completed then async_payment_succeeded grant once (also when they race)', async () => {
    const { purchaseId, session } = await startCheckout(t, 'twice_user', pkg.id);
    const paid = sessionObject(session);
    const completed = stripeEvent('checkout.session.completed', paid);
    const succeeded = stripeEvent('checkout.session.async_payment_succeeded', paid);
    expect((await deliver(t.app, completed)).json().data.outcome).toBe('processed');
    const second = await deliver(t.app, succeeded);
    expect(second.statusCode).toBe(200);
    expect(second.json().data).toMatchObject({ outcome: 'processed', note: 'already granted' });
    expect((await balanceOf(t.app, 'twice_user')).balance).toBe(100);
    expect(await ledgerRows(t, 'twice_user')).toHaveLength(1);
    expect((await purchaseRow(t, purchaseId)).status).toBe('completed');

    // Two different events for one session at the same instant: the purchase row lock orders them.
    const race = await startCheckout(t, 'race_user', pkg.id);
    const racePaid = sessionObject(race.session);
    const results = await Promise.all([
      deliver(t.app, stripeEvent('checkout.session.completed', racePaid)),
      deliver(t.app, stripeEvent('checkout.session.async_payment_succeeded', racePaid)),
    ]);
    expect(results.map((r) => r.statusCode)).toEqual([200, 200]);
    expect((await balanceOf(t.app, 'race_user')).balance).toBe(100);
    expect(await ledgerRows(t, 'race_user')).toHaveLength(1);
    expect(
      await eventRows(
        t,
        results.map((r) => r.json().data.eventId),
      ),
    ).toHaveLength(2);
  });

  it('a payload claiming other amounts grants no other credits: they come from the purchase snapshot', async () => {
    const sold = await createPackage(t.app, { name: 'Sold', credits: 100, price: 1000 });
    const { purchaseId, session } = await startCheckout(t, 'claims_user', sold.id);
    const other = await createPackage(t.app, { name: 'Huge', credits: 100_000, price: 1 });
    // The package is edited after the checkout: what was sold stays what was sold.
    const edit = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/credit-packages/${sold.id}`,
      headers: asAdmin(),
      payload: { credits: 5000, price: 1 },
    });
    expect(edit.statusCode).toBe(200);

    const forged = sessionObject(session, {
      amount_subtotal: 99_999_900,
      amount_total: 99_999_900,
      currency: 'jpy',
      metadata: { purchaseId, userId: 'claims_user', packageId: other.id, credits: '100000' },
      line_items: { data: [{ quantity: 1000, price: { unit_amount: 99_999 } }] },
    });
    const res = await deliver(t.app, stripeEvent('checkout.session.completed', forged));
    expect(res.statusCode).toBe(200);
    expect((await balanceOf(t.app, 'claims_user')).balance).toBe(100);
    expect(await ledgerRows(t, 'claims_user')).toEqual([
      expect.objectContaining({ type: 'grant', amount: 100 }),
    ]);
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'completed',
      credits: 100,
      // The price is what Stripe says the buyer paid (section 15): the session's amount_total and currency.
      price: 99_999_900,
      currency: 'jpy',
      package_id: sold.id,
    });
  });

  it('completed with payment_status unpaid waits; async_payment_succeeded then grants', async () => {
    const { purchaseId, session } = await startCheckout(t, 'async_user', pkg.id);
    const unpaid = sessionObject(session, { payment_status: 'unpaid' });
    const res = await deliver(t.app, stripeEvent('checkout.session.completed', unpaid));
    expect(res.statusCode).toBe(200);
    expect(res.json().data.outcome).toBe('processed');
    expect((await balanceOf(t.app, 'async_user')).balance).toBe(0);
    expect(await ledgerRows(t, 'async_user')).toEqual([]);
    // Pending, but the PaymentIntent is already remembered (refunds and disputes are found by it).
    expect(await purchaseRow(t, purchaseId)).toMatchObject({
      status: 'pending',
      stripe_payment_intent_id: unpaid.payment_intent,
    });

    const succeeded = stripeEvent('checkout.session.async_payment_succeeded', {
      ...unpaid,
      payment_status: 'paid',
    });
    expect((await deliver(t.app, succeeded)).json().data.outcome).toBe('processed');
    expect((await balanceOf(t.app, 'async_user')).balance).toBe(100);
    expect(await ledgerRows(t, 'async_user')).toEqual([
      expect.objectContaining({ type: 'grant', amount: 100, idempotency_key: `stripe:grant:${purchaseId}` }),
    ]);
    expect((await purchaseRow(t, purchaseId)).status).toBe('completed');
  });

  it('async_payment_failed marks the purchase failed, checkout.session.expired marks it expired; no credits', async () => {
    const a = await startCheckout(t, 'fail_user', pkg.id);
    const unpaid = sessionObject(a.session, { payment_status: 'unpaid' });
    await deliver(t.app, stripeEvent('checkout.session.completed', unpaid));
    const failed = await deliver(t.app, stripeEvent('checkout.session.async_payment_failed', unpaid));
    expect(failed.statusCode).toBe(200);
    expect((await purchaseRow(t, a.purchaseId)).status).toBe('failed');

    const b = await startCheckout(t, 'fail_user', pkg.id);
    const expiredSession = sessionObject(b.session, {
      status: 'expired',
      payment_status: 'unpaid',
      payment_intent: null,
    });
    const expired = await deliver(t.app, stripeEvent('checkout.session.expired', expiredSession));
    expect(expired.statusCode).toBe(200);
    expect((await purchaseRow(t, b.purchaseId)).status).toBe('expired');

    expect((await balanceOf(t.app, 'fail_user')).balance).toBe(0);
    expect(await ledgerRows(t, 'fail_user')).toEqual([]);
    const purchases = await t.app.inject({
      method: 'GET',
      url: '/api/v1/accounts/fail_user/purchases',
      headers: asAdmin(),
    });
    expect(
      purchases
        .json()
        .data.items.map((p: { status: string }) => p.status)
        .sort(),
    ).toEqual(['expired', 'failed']);

    // Events that change nothing are still stored once and acknowledged: an unknown type, and a
    // session that is not one of ours.
    const unknown = stripeEvent('customer.created', { id: 'cus_123', object: 'customer' });
    const foreign = stripeEvent('checkout.session.completed', {
      ...sessionObject(b.session),
      id: 'cs_test_someone_else',
      client_reference_id: null,
      metadata: {},
    });
    for (const event of [unknown, foreign]) {
      const res = await deliver(t.app, event);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ isSuccess: true, data: { outcome: 'ignored', purchaseId: null } });
    }
    expect(await eventRows(t, [unknown.id as string, foreign.id as string])).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ event_id: unknown.id, status: 'ignored' }),
        expect.objectContaining({ event_id: foreign.id, status: 'ignored' }),
      ]),
    );
  });
});
